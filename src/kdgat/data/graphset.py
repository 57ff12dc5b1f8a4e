"""A set of graphs as flat arrays (like PyG's InMemoryDataset: data + slices), stored as one .npz."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, BinaryIO, Sequence

import numpy as np

from kdgat.atomic import save_npz_atomic
from kdgat.data.features import EDGE_FEATURES, NODE_FEATURES
from kdgat.data.identity import GRAPHSET_VERSION
from kdgat.data.vocabulary import Vocabulary

if TYPE_CHECKING:
    from kdgat.data.batching import PygGraphs


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
        save_npz_atomic(path, version=np.int64(GRAPHSET_VERSION), **arrays)

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
        """A lazy, indexable view: a Data object is made only when asked for (kdgat.data.batching)."""
        from kdgat.data.batching import PygGraphs

        return PygGraphs(self)

