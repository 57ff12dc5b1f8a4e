"""CAN frames to graphs (SPEC §4), with whole-array numpy and no per-frame loop.

One graph per window of ``window`` consecutive frames, a window starting every
``stride`` frames (the last partial window is dropped). Nodes are the distinct
CAN ids of the window, **ordered by CAN id ascending** (so known ids appear in
vocabulary order); a directed edge joins the id of each frame to the id of the
next frame. A window is an attack (y = 1) if any of its frames is injected.

Node features (``NODE_FEATURES``, float32):

- ``byte0..byte7``: mean payload byte / 255, in [0, 1] (bytes past the DLC are 0);
- ``count``: occurrences of the id in the window / window, in (0, 1];
- ``log_iat_ms``: log1p(mean inter-arrival time of the id in the window, in
  ms) / log1p(1000); 0 for an id seen once. The log keeps a 0.3 ms DoS
  flood (0.04) and a 1 s heartbeat (1.0) on one scale;
- ``rel_pos``: mean index of the id's frames in the window / window, in [0, 1).

Edge features (``EDGE_FEATURES``, float32): ``count`` = transitions / (window
- 1), in (0, 1]; ``log_dt_ms`` = log1p(mean time between the two frames of the
transition, in ms) / log1p(1000). Negative time steps (out-of-order timestamps in real
captures) count as 0.

Everything here is numpy; torch is imported only inside the methods that make
PyG objects, because the launcher and ``--cfg job`` import kdgat and must
never import torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np

from kdgat.atomic import atomic_write, write_json_atomic
from kdgat.data.frames import Frames
from kdgat.data.identity import GRAPHSET_VERSION, check_window
from kdgat.errors import KdgatError

NODE_FEATURES = (
    "byte0", "byte1", "byte2", "byte3", "byte4", "byte5", "byte6", "byte7",
    "count", "log_iat_ms", "rel_pos",
)  # fmt: skip
EDGE_FEATURES = ("count", "log_dt_ms")
# Timing features are log1p(milliseconds) / log1p(1000): a 1 s gap is 1.0, so
# they share the [0, ~1] range of the other features and none dominates a
# reconstruction error.
TIME_SCALE = float(1 / np.log1p(1000.0))


# --------------------------------------------------------------------------- vocabulary


class Vocabulary:
    """CAN id -> index, with index 0 the unknown-id slot shared by every split.

    Built once from the training frames and stored, so that every stage and
    split maps ids the same way; ids never seen in training map to 0.
    """

    UNKNOWN = 0
    _TABLE_LIMIT = 1 << 16  # ids below this are looked up in a table, others by binary search

    def __init__(self, can_ids: Iterable[int] | np.ndarray):
        ids = _unique_ids(np.asarray(list(can_ids) if not hasattr(can_ids, "__len__") else can_ids, np.int64))
        self.ids: np.ndarray = ids  # sorted, distinct; index of ids[i] is i + 1
        self._table: np.ndarray | None = None
        if len(ids) and ids[0] >= 0 and ids[-1] < self._TABLE_LIMIT:
            self._table = np.zeros(int(ids[-1]) + 2, np.int64)  # last entry: "too large" -> unknown
            self._table[ids] = np.arange(1, len(ids) + 1)

    @classmethod
    def from_frames(cls, frames: Frames | Sequence[Frames]) -> "Vocabulary":
        parts = [frames] if isinstance(frames, Frames) else list(frames)
        return cls(np.concatenate([_unique_ids(p.can_id) for p in parts]) if parts else [])

    def __len__(self) -> int:
        return len(self.ids) + 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self.ids, other.ids)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.ids)} ids + unknown)"

    def index(self, can_ids: np.ndarray) -> np.ndarray:
        """Vocabulary indices (int64) of an array of CAN ids; unknown ids give 0."""
        can_ids = np.asarray(can_ids)
        if len(self.ids) == 0:
            return np.zeros(can_ids.shape, np.int64)
        if self._table is not None:
            return self._table[np.clip(can_ids, 0, len(self._table) - 1)]
        can_ids = can_ids.astype(np.int64, copy=False)
        pos = np.searchsorted(self.ids, can_ids)
        clipped = np.minimum(pos, len(self.ids) - 1)
        return np.where(self.ids[clipped] == can_ids, clipped + 1, self.UNKNOWN).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "unknown_index": self.UNKNOWN, "can_ids": [int(i) for i in self.ids]}

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            ids = doc["can_ids"]
            if doc.get("version") != 1 or not isinstance(ids, list):
                raise ValueError("unexpected layout")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KdgatError(f"cannot read the vocabulary {path}: {exc}") from None
        return cls(ids)


def _unique_ids(can_ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids; a histogram instead of a sort for standard 11-bit ids."""
    can_ids = np.asarray(can_ids).reshape(-1)
    if len(can_ids) and 0 <= int(can_ids.min()) and int(can_ids.max()) < 1 << 16:
        return np.flatnonzero(np.bincount(can_ids)).astype(np.int64)
    return np.unique(can_ids.astype(np.int64))


# --------------------------------------------------------------------------- graph set


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(lengths) - lengths  # where each range begins in the output
    return np.repeat(np.asarray(starts, np.int64) - offsets, lengths) + np.arange(total, dtype=np.int64)


@dataclass
class GraphSet:
    """G graphs as flat arrays, like PyG's InMemoryDataset (data + slices).

    Graph g owns nodes ``node_ptr[g]:node_ptr[g+1]`` and edges
    ``edge_ptr[g]:edge_ptr[g+1]``; ``edge_index`` is local to its graph
    (0 .. nodes-1), so slicing a graph out needs no renumbering.
    """

    node_id: np.ndarray  # int64 (total_nodes,) vocabulary index (0 = unknown id)
    can_id: np.ndarray  # int64 (total_nodes,) raw CAN id, kept for inspection/re-indexing
    x: np.ndarray  # float32 (total_nodes, len(NODE_FEATURES))
    edge_index: np.ndarray  # int64 (2, total_edges), local to each graph
    edge_attr: np.ndarray  # float32 (total_edges, len(EDGE_FEATURES))
    y: np.ndarray  # int64 (G,)
    node_ptr: np.ndarray  # int64 (G + 1,)
    edge_ptr: np.ndarray  # int64 (G + 1,)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_nodes(self) -> int:
        return len(self.node_id)

    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    @classmethod
    def empty(cls) -> "GraphSet":
        return cls(
            node_id=np.zeros(0, np.int64),
            can_id=np.zeros(0, np.int64),
            x=np.zeros((0, len(NODE_FEATURES)), np.float32),
            edge_index=np.zeros((2, 0), np.int64),
            edge_attr=np.zeros((0, len(EDGE_FEATURES)), np.float32),
            y=np.zeros(0, np.int64),
            node_ptr=np.zeros(1, np.int64),
            edge_ptr=np.zeros(1, np.int64),
        )

    def validate(self) -> "GraphSet":
        """Raise ValueError unless the arrays describe well-formed graphs."""
        g = len(self.y)
        n, e = len(self.node_id), self.edge_index.shape[1] if self.edge_index.ndim == 2 else -1
        problems = []
        if self.node_ptr.shape != (g + 1,) or self.edge_ptr.shape != (g + 1,):
            problems.append("pointer arrays do not have G + 1 entries")
        elif self.node_ptr[0] != 0 or self.node_ptr[-1] != n or np.any(np.diff(self.node_ptr) < 0):
            problems.append("node_ptr is not a monotone 0..total_nodes")
        elif self.edge_ptr[0] != 0 or self.edge_ptr[-1] != e or np.any(np.diff(self.edge_ptr) < 0):
            problems.append("edge_ptr is not a monotone 0..total_edges")
        if self.x.shape != (n, len(NODE_FEATURES)) or self.can_id.shape != (n,):
            problems.append(f"x/can_id do not have {n} rows of the node features")
        if self.edge_index.shape != (2, e) or self.edge_attr.shape != (e, len(EDGE_FEATURES)):
            problems.append("edge_index/edge_attr shapes disagree")
        if not problems and e:
            sizes = np.repeat(np.diff(self.node_ptr), np.diff(self.edge_ptr))
            if self.edge_index.min() < 0 or np.any(self.edge_index >= sizes):
                problems.append("edge_index points outside its graph")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- selection and combination

    def subset(self, idx: np.ndarray | Sequence[int]) -> "GraphSet":
        """The graphs ``idx`` (any order, repeats allowed), as a new GraphSet."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"graph index out of range for {len(self)} graphs")
        idx = idx % max(len(self), 1)
        n_len = self.node_ptr[idx + 1] - self.node_ptr[idx]
        e_len = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        nodes = _ranges(self.node_ptr[idx], n_len)
        edges = _ranges(self.edge_ptr[idx], e_len)
        return GraphSet(
            node_id=self.node_id[nodes],
            can_id=self.can_id[nodes],
            x=self.x[nodes],
            edge_index=self.edge_index[:, edges],
            edge_attr=self.edge_attr[edges],
            y=self.y[idx],
            node_ptr=np.concatenate([[0], np.cumsum(n_len)]).astype(np.int64),
            edge_ptr=np.concatenate([[0], np.cumsum(e_len)]).astype(np.int64),
        )

    @classmethod
    def concat(cls, parts: Sequence["GraphSet"]) -> "GraphSet":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]

        def ptr(name: str) -> np.ndarray:
            offsets = np.cumsum([0] + [getattr(p, name)[-1] for p in parts[:-1]])
            return np.concatenate([[0]] + [getattr(p, name)[1:] + o for p, o in zip(parts, offsets)])

        return cls(
            node_id=np.concatenate([p.node_id for p in parts]),
            can_id=np.concatenate([p.can_id for p in parts]),
            x=np.concatenate([p.x for p in parts]),
            edge_index=np.concatenate([p.edge_index for p in parts], axis=1),
            edge_attr=np.concatenate([p.edge_attr for p in parts]),
            y=np.concatenate([p.y for p in parts]),
            node_ptr=ptr("node_ptr").astype(np.int64),
            edge_ptr=ptr("edge_ptr").astype(np.int64),
        )

    def with_vocab(self, vocab: Vocabulary) -> "GraphSet":
        """The same graphs with ``node_id`` recomputed from ``can_id`` by ``vocab``."""
        out = GraphSet(**{f.name: getattr(self, f.name) for f in fields(self)})
        out.node_id = vocab.index(self.can_id)
        return out

    # -- storage

    def save(self, path: str | os.PathLike) -> None:
        """Write an uncompressed .npz (no pickled objects), atomically."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        with atomic_write(path, "wb") as f:
            np.savez(f, version=np.int64(GRAPHSET_VERSION), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike | BinaryIO) -> "GraphSet":
        """Read a GraphSet; raise ValueError (or OSError) if the file is not a whole one."""
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != GRAPHSET_VERSION:
                raise ValueError(f"GraphSet version {int(z['version'])}, expected {GRAPHSET_VERSION}")
            graphs = cls(**{f.name: np.asarray(z[f.name]) for f in fields(cls)})
        return graphs.validate()

    # -- PyG

    def to_pyg(self) -> list:
        """One ``torch_geometric.data.Data`` per graph (eager; see ``as_dataset``).

        Tensors are made once for the whole set and each graph gets views of
        them, so this costs a Data object per graph but no array copies.
        """
        view = self.as_dataset()
        return [view[i] for i in range(len(self))]

    def as_dataset(self) -> "PygGraphs":
        """A lazy, indexable view: a Data object is made only when asked for."""
        return PygGraphs(self)


class PygGraphs:
    """Map-style dataset over a GraphSet for ``torch_geometric.loader.DataLoader``.

    Indexing returns a ``Data`` with ``x``, ``node_id`` (vocabulary index),
    ``edge_index``, ``edge_attr`` and ``y`` (shape [1]) whose tensors are views
    of a few whole-set tensors; nothing per graph is kept between calls, unlike
    a list of 10^5 Data objects. ``loader`` skips Data objects altogether.
    """

    def __init__(self, graphs: GraphSet):
        import torch

        self.graphs = graphs
        self._x = torch.from_numpy(np.ascontiguousarray(graphs.x))
        self._node_id = torch.from_numpy(np.ascontiguousarray(graphs.node_id))
        # a graph's edge_index is a (2, e) column slice of this: a view, like InMemoryDataset's
        self._edge_index = torch.from_numpy(np.ascontiguousarray(graphs.edge_index))
        self._edge_attr = torch.from_numpy(np.ascontiguousarray(graphs.edge_attr))
        self._y = torch.from_numpy(np.ascontiguousarray(graphs.y))
        self._node_ptr = graphs.node_ptr.tolist()
        self._edge_ptr = graphs.edge_ptr.tolist()

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        from torch_geometric.data import Data

        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"graph {i} out of range for {len(self)} graphs")
        a, b = self._node_ptr[i], self._node_ptr[i + 1]
        c, d = self._edge_ptr[i], self._edge_ptr[i + 1]
        return Data(
            x=self._x[a:b],
            node_id=self._node_id[a:b],
            edge_index=self._edge_index[:, c:d],
            edge_attr=self._edge_attr[c:d],
            y=self._y[i : i + 1],
        )

    def collate(self, indices: Sequence[int] | np.ndarray):
        """The graphs ``indices`` as one ``torch_geometric.data.Batch``, built with
        whole-array ops (what ``Batch.from_data_list`` gives, without the Data objects)."""
        return collate_batch(self.graphs, indices)

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False, **kwargs):
        """A ``torch.utils.data.DataLoader`` yielding ``Batch`` objects made by ``collate``.

        Extra keyword arguments (``num_workers``, ``pin_memory``...) go to the DataLoader.
        """
        import torch

        gen = torch.Generator().manual_seed(seed) if shuffle else None
        return torch.utils.data.DataLoader(
            _BatchedGraphs(self.graphs), batch_size=batch_size, shuffle=shuffle, generator=gen,
            drop_last=drop_last, collate_fn=_first_and_only, **kwargs,
        )


class _BatchedGraphs:
    """DataLoader dataset whose ``__getitems__`` hands over a whole Batch at once."""

    def __init__(self, graphs: GraphSet):
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        return collate_batch(self.graphs, [i])

    def __getitems__(self, indices: list[int]):
        return collate_batch(self.graphs, indices)


def _first_and_only(batch):
    """collate_fn for _BatchedGraphs: the fetched object is already the Batch."""
    return batch


def collate_batch(graphs: GraphSet, indices: Sequence[int] | np.ndarray):
    """``Batch.from_data_list([graph i for i in indices])``, without per-graph objects."""
    import torch
    from torch_geometric.data import Batch, Data

    sub = graphs.subset(np.asarray(indices, dtype=np.int64))
    n = len(sub)
    n_nodes = np.diff(sub.node_ptr)
    n_edges = np.diff(sub.edge_ptr)
    node_ptr = torch.from_numpy(sub.node_ptr)
    edge_ptr = torch.from_numpy(sub.edge_ptr)
    zeros = torch.zeros(n, dtype=torch.long)
    out = Batch(_base_cls=Data)
    out.x = torch.from_numpy(sub.x)
    out.node_id = torch.from_numpy(sub.node_id)
    out.edge_index = torch.from_numpy(sub.edge_index + np.repeat(sub.node_ptr[:-1], n_edges))
    out.edge_attr = torch.from_numpy(sub.edge_attr)
    out.y = torch.from_numpy(sub.y)
    out.batch = torch.from_numpy(np.repeat(np.arange(n, dtype=np.int64), n_nodes))
    out.ptr = node_ptr
    out._num_graphs = n
    out._slice_dict = {
        "x": node_ptr, "node_id": node_ptr, "edge_index": edge_ptr, "edge_attr": edge_ptr,
        "y": torch.arange(n + 1),
    }  # fmt: skip
    out._inc_dict = {
        "x": zeros, "node_id": zeros, "edge_index": node_ptr[:-1], "edge_attr": zeros, "y": zeros,
    }  # fmt: skip
    return out


# --------------------------------------------------------------------------- windows


def count_windows(n_frames: int, window: int, stride: int) -> int:
    """How many whole windows ``build_graphs`` makes from ``n_frames`` frames."""
    check_window(window, stride)
    return 0 if n_frames < window else (n_frames - window) // stride + 1


CHUNK_SLOTS = 1 << 18  # frames-in-windows handled per vectorised step: bounds the temporaries


def build_graphs(
    frames: Frames, vocab: Vocabulary | None, window: int = 100, stride: int | None = None
) -> GraphSet:
    """Graphs of every whole window of ``frames`` (see the module doc for features).

    ``stride`` defaults to ``window``: non-overlapping windows.
    ``vocab=None`` leaves ``node_id`` at 0 (unknown) for every node; fill it
    later with ``GraphSet.with_vocab`` once the vocabulary is known.

    Windows are processed as a (windows, window) grid, a few thousand windows
    per step so that temporaries stay small next to the output; each step is
    whole-array numpy (see ``_build_block``), never a loop per frame or window.
    """
    stride = window if stride is None else stride
    check_window(window, stride)
    W, stride = int(window), int(stride)
    G = count_windows(len(frames), W, stride)
    if G == 0:
        return GraphSet.empty()
    if int(frames.can_id.min()) < 0 or int(frames.can_id.max()) >= 1 << 32:  # sort keys are id << 7..
        raise KdgatError("CAN ids must be in [0, 2**32); got an id outside it")
    # 8 payload bytes as one uint64 per frame: gathers and sorts move one word, not 8 bytes.
    payload64 = np.ascontiguousarray(frames.payload, dtype=np.uint8).view(np.uint64).reshape(-1)
    out = _Collector(G, W, len(_unique_ids(frames.can_id)), len(frames))
    per_block = max(1, CHUNK_SLOTS // W)
    for g0 in range(0, G, per_block):  # one iteration per block of ~5000 windows
        g1 = min(G, g0 + per_block)
        lo, hi = g0 * stride, (g1 - 1) * stride + W
        out.add(
            _build_block(
                frames.timestamp[lo:hi], frames.can_id[lo:hi], payload64[lo:hi], frames.label[lo:hi],
                g1 - g0, W, stride,
            )
        )
    graphs = out.finish()
    if vocab is not None:
        graphs.node_id = vocab.index(graphs.can_id)
    return graphs


class _Collector:
    """Joins the blocks' graphs, writing each into output arrays sized once.

    Nodes per window are at most min(window, distinct ids) and edges at most
    min(window - 1, ids**2), so the arrays are allocated at that bound
    (np.empty: pages never written are never resident), filled block by block
    and shrunk in place at the end. This avoids holding every block *and* the
    joined copy at once. When the bound is far above the frame count
    (heavily overlapping windows) blocks are kept and concatenated instead.
    """

    def __init__(self, n_graphs: int, window: int, n_ids: int, n_frames: int):
        self.max_nodes = n_graphs * min(window, n_ids)
        self.max_edges = n_graphs * min(window - 1, n_ids * n_ids)
        self.parts: list[GraphSet] | None = None
        if self.max_nodes > 2 * n_frames + window:
            self.parts = []
            return
        self.can_id = np.empty(self.max_nodes, np.int64)
        self.x = np.empty((self.max_nodes, len(NODE_FEATURES)), np.float32)
        self.edge_index = np.empty((2, self.max_edges), np.int64)
        self.edge_attr = np.empty((self.max_edges, len(EDGE_FEATURES)), np.float32)
        self.y = np.empty(n_graphs, np.int64)
        self.node_ptr = np.zeros(n_graphs + 1, np.int64)
        self.edge_ptr = np.zeros(n_graphs + 1, np.int64)
        self.graphs = 0

    def add(self, block: GraphSet) -> None:
        if self.parts is not None:
            self.parts.append(block)
            return
        g, n, e = self.graphs, int(self.node_ptr[self.graphs]), int(self.edge_ptr[self.graphs])
        m, k = block.num_nodes, block.num_edges
        self.can_id[n : n + m] = block.can_id
        self.x[n : n + m] = block.x
        self.edge_index[:, e : e + k] = block.edge_index
        self.edge_attr[e : e + k] = block.edge_attr
        self.y[g : g + len(block)] = block.y
        self.node_ptr[g + 1 : g + len(block) + 1] = block.node_ptr[1:] + n
        self.edge_ptr[g + 1 : g + len(block) + 1] = block.edge_ptr[1:] + e
        self.graphs += len(block)

    def finish(self) -> GraphSet:
        if self.parts is not None:
            return _concat_consuming(self.parts)
        m, k = int(self.node_ptr[-1]), int(self.edge_ptr[-1])
        flat = self.edge_index.reshape(-1)  # a view: (2, max_edges) in C order
        flat[k : 2 * k] = flat[self.max_edges : self.max_edges + k]  # row 1 right after row 0
        del flat
        return GraphSet(
            node_id=np.zeros(m, np.int64),
            can_id=_shrunk(self.can_id, m),
            x=_shrunk(self.x, m, len(NODE_FEATURES)),
            edge_index=_shrunk(self.edge_index, 2, k),
            edge_attr=_shrunk(self.edge_attr, k, len(EDGE_FEATURES)),
            y=self.y,
            node_ptr=self.node_ptr,
            edge_ptr=self.edge_ptr,
        )


def _shrunk(a: np.ndarray, *shape: int) -> np.ndarray:
    """The first prod(shape) elements of ``a`` (C order) as ``shape``, shrinking the
    buffer in place (realloc, no copy of a large buffer) when numpy allows it."""
    try:
        a.resize(shape, refcheck=False)
        return a
    except ValueError:  # not the owner of its buffer: copy instead
        return a.reshape(-1)[: int(np.prod(shape))].reshape(shape).copy()


def _grid(a: np.ndarray, n_windows: int, window: int, stride: int) -> np.ndarray:
    """(n_windows, window) view (stride == window) or gather of a frame column."""
    if stride == window:
        return a[: n_windows * window].reshape(n_windows, window)
    starts = np.arange(n_windows, dtype=np.int64)[:, None] * stride
    return a[starts + np.arange(window)]


def _build_block(
    timestamp: np.ndarray, can_id: np.ndarray, payload64: np.ndarray, label: np.ndarray,
    G: int, W: int, stride: int,
) -> GraphSet:
    """Graphs of G windows of W frames starting every ``stride`` frames of these columns.

    Each window row is sorted on ``can_id << pbits | position`` (a sort per
    row of W keys, which numpy does for all rows at once): equal ids become
    runs, ordered by time inside the run. A run is a node; its first and last
    entries give the time span, segment sums give the rest.
    Edges likewise: each row's transitions are sorted on
    ``(src * W + dst) << qbits | position`` and runs of equal (src, dst) merged.
    """
    S = G * W
    rows = np.arange(G, dtype=np.int64)[:, None]

    # ---- nodes
    pbits = (W - 1).bit_length()
    key_t = np.int32 if int(can_id.max()) < (1 << (31 - pbits)) else np.int64
    key = _grid(can_id, G, W, stride).astype(key_t) << pbits
    key |= np.arange(W, dtype=key_t)
    key.sort(axis=1)
    pos = (key & ((1 << pbits) - 1)).astype(np.int64)  # position in window, sorted by (id, time)
    cid = key >> pbits
    del key
    is_first = np.empty((G, W), bool)
    is_first[:, 0] = True
    np.not_equal(cid[:, 1:], cid[:, :-1], out=is_first[:, 1:])
    starts = np.flatnonzero(is_first)  # flat index of each node's first entry
    ends = np.append(starts[1:], S) - 1
    node_graph = starts // W
    node_can = cid.reshape(-1)[starts].astype(np.int64)
    del cid
    counts = ends - starts + 1
    node_ptr = np.zeros(G + 1, np.int64)
    np.cumsum(np.bincount(node_graph, minlength=G), out=node_ptr[1:])
    slot = (rows * W + pos).reshape(-1)  # window slot of each sorted entry
    pos = pos.reshape(-1)

    t = _grid(timestamp, G, W, stride)
    t_flat = t.reshape(-1)
    span_ms = np.maximum(t_flat[slot[ends]] - t_flat[slot[starts]], 0.0) * 1e3
    iat_ms = np.divide(span_ms, counts - 1, out=np.zeros_like(span_ms), where=counts > 1)
    x = np.empty((len(starts), len(NODE_FEATURES)), np.float32)
    x[:, :8] = _byte_means(_grid(payload64, G, W, stride).reshape(-1)[slot], ends, counts, W)
    x[:, 8] = counts / W
    x[:, 9] = np.log1p(iat_ms) * TIME_SCALE
    x[:, 10] = _segment_sums(pos, ends) / (counts * float(W))

    # node (local to its graph) of every window slot
    local = (np.cumsum(is_first, axis=1, dtype=np.int32) - 1).reshape(-1)
    del is_first
    node_of_slot = np.empty(S, np.int32)
    node_of_slot[slot] = local
    node_of_slot = node_of_slot.reshape(G, W)
    del local, slot, pos

    # ---- edges: slot p -> slot p + 1 of the same window
    T = W - 1
    qbits = max(T - 1, 1).bit_length()
    ekey_t = np.int32 if (W * W) << qbits < (1 << 31) else np.int64
    ekey = node_of_slot[:, :-1].astype(ekey_t) * W + node_of_slot[:, 1:]
    del node_of_slot
    ekey <<= qbits
    ekey |= np.arange(T, dtype=ekey_t)
    ekey.sort(axis=1)
    tpos = (ekey & ((1 << qbits) - 1)).astype(np.int64)
    pair = ekey >> qbits
    del ekey
    e_first = np.empty((G, T), bool)
    e_first[:, 0] = True
    np.not_equal(pair[:, 1:], pair[:, :-1], out=e_first[:, 1:])
    e_starts = np.flatnonzero(e_first)
    del e_first
    e_counts = np.diff(np.append(e_starts, G * T))
    dt_ms = np.maximum(np.diff(t, axis=1), 0.0).reshape(-1) * 1e3
    dt_sum = _segment_sums(dt_ms[(rows * T + tpos).reshape(-1)], np.append(e_starts[1:], G * T) - 1)
    del dt_ms, tpos
    e_pair = pair.reshape(-1)[e_starts].astype(np.int64)
    del pair
    edge_index = np.empty((2, len(e_starts)), np.int64)
    np.floor_divide(e_pair, W, out=edge_index[0])
    np.remainder(e_pair, W, out=edge_index[1])
    edge_attr = np.empty((len(e_starts), len(EDGE_FEATURES)), np.float32)
    edge_attr[:, 0] = e_counts / T
    edge_attr[:, 1] = np.log1p(dt_sum / e_counts) * TIME_SCALE
    edge_ptr = np.zeros(G + 1, np.int64)
    np.cumsum(np.bincount(e_starts // T, minlength=G), out=edge_ptr[1:])

    y = (_grid(label, G, W, stride).max(axis=1) > 0).astype(np.int64)
    return GraphSet(
        node_id=np.zeros(len(node_can), np.int64),
        can_id=node_can,
        x=x,
        edge_index=edge_index,
        edge_attr=edge_attr,
        y=y,
        node_ptr=node_ptr,
        edge_ptr=edge_ptr,
    )


def _segment_sums(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments ending (inclusive) at ``ends``, the first one at 0.

    cumsum and a difference: about twice as fast as ``np.add.reduceat``. Exact
    for integers (unsigned ones wrap modulo 2**64 and the difference undoes
    it); for float64 the rounding is ~1e-16 of the running total.
    """
    c = np.cumsum(values)
    out = c[ends]
    out[1:] -= c[ends[:-1]]
    return out


def _byte_means(words: np.ndarray, ends: np.ndarray, counts: np.ndarray, window: int) -> np.ndarray:
    """Per-segment means / 255 of the 8 bytes of uint64 payload words, as (segments, 8) float32.

    Several bytes are summed at once in lanes of one uint64: bytes 0, 2, 4, 6
    in four 16-bit lanes and bytes 1, 3, 5, 7 in another word (a segment of at
    most ``window`` <= 257 frames sums to < 2**16 per lane, so no lane carries
    into the next), or 32-bit lanes for longer windows. That is 2 (or 4)
    one-dimensional segment sums instead of a slow 2-D ``reduceat``.
    """
    scale = (1.0 / (counts * 255.0)).astype(np.float32)[:, None]
    out = np.empty((len(ends), 8), np.float32)
    if not np.little_endian:  # pragma: no cover - lane order below assumes little-endian words
        starts = np.r_[0, ends[:-1] + 1]
        sums = np.add.reduceat(words.view(np.uint8).reshape(-1, 8), starts, axis=0, dtype=np.uint32)
        np.multiply(sums, scale, out=out)
        return out
    lane_bits = 16 if window * 255 < 1 << 16 else 32
    lanes = 64 // lane_bits
    mask = np.uint64(sum(0xFF << (lane_bits * k) for k in range(lanes)))
    for shift in range(64 // lanes // 8):  # 2 (16-bit lanes) or 4 (32-bit lanes) passes
        sums = _segment_sums((words >> np.uint64(8 * shift)) & mask, ends)
        lane_sums = sums.view(np.uint16 if lane_bits == 16 else np.uint32).reshape(-1, lanes)
        np.multiply(lane_sums, scale, out=out[:, shift :: 64 // lanes // 8])
    return out


def _concat_consuming(parts: list[GraphSet]) -> GraphSet:
    """GraphSet.concat that frees each part's column once it is copied (lower peak memory)."""
    if len(parts) == 1:
        return parts[0]
    out = {}
    for f in fields(GraphSet):
        cols = [getattr(p, f.name) for p in parts]
        for p in parts:
            setattr(p, f.name, None)
        if f.name in ("node_ptr", "edge_ptr"):
            offsets = np.cumsum([0] + [c[-1] for c in cols[:-1]])
            out[f.name] = np.concatenate([[0]] + [c[1:] + o for c, o in zip(cols, offsets)]).astype(np.int64)
        else:
            out[f.name] = np.concatenate(cols, axis=1 if f.name == "edge_index" else 0)
        del cols
    return GraphSet(**out)


# --------------------------------------------------------------------------- split


def make_split(
    n: int, val_fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train_idx, val_idx), both sorted, over ``n`` graphs.

    With ``labels`` the split is stratified: each class gives the same
    fraction (rounded) to validation, so a rare attack class is in both.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise KdgatError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(n, dtype=np.int64)]
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    val = []
    for members in groups:  # one iteration per class, not per graph
        shuffled = members[rng.permutation(len(members))]
        val.append(shuffled[: int(round(val_fraction * len(members)))])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64) if val else np.zeros(0, np.int64)
    mask = np.ones(n, bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx
