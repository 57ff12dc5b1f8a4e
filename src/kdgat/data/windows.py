"""CAN frames to graphs, one per window, with whole-array numpy and no per-frame loop.

One graph per window of ``window`` consecutive frames, a window starting every
``stride`` frames (the last partial window is dropped). Nodes are the distinct
CAN ids of the window, **ordered by CAN id ascending** (so known ids appear in
vocabulary order); a directed edge joins the id of each frame to the id of the
next frame. A window is an attack (y = 1) if any of its frames is injected.
The node and edge features are described in kdgat.data.features.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from kdgat.data.features import EDGE_FEATURES, NODE_FEATURES, TIME_SCALE
from kdgat.data.frames import Frames
from kdgat.data.graphset import GraphSet
from kdgat.data.identity import check_window
from kdgat.data.threads import in_order
from kdgat.data.vocabulary import Vocabulary, unique_ids
from kdgat.errors import KdgatError


def count_windows(n_frames: int, window: int, stride: int) -> int:
    """How many whole windows ``build_graphs`` makes from ``n_frames`` frames."""
    check_window(window, stride)
    return 0 if n_frames < window else (n_frames - window) // stride + 1


CHUNK_SLOTS = 1 << 18  # frames-in-windows handled per vectorised step: bounds the temporaries


def build_graphs(
    frames: Frames, vocab: Vocabulary | None, window: int = 100, stride: int | None = None
) -> GraphSet:
    """Graphs of every whole window of ``frames`` (features: kdgat.data.features).

    ``stride`` defaults to ``window``: non-overlapping windows.
    ``vocab=None`` leaves ``node_id`` at 0 (unknown) for every node; fill it
    later with ``GraphSet.with_vocab`` once the vocabulary is known.

    Windows are processed as a (windows, window) grid, a few thousand windows
    per step so that temporaries stay small next to the output; each step is
    whole-array numpy (see ``_build_block``), never a loop per frame or window,
    and the next steps run ahead on the other cores (kdgat.data.threads).
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
    # the distinct ids bound nodes per window below W; that only matters for overlapping windows
    n_ids = len(unique_ids(frames.can_id)) if stride < W else W
    out = _Collector(G, W, n_ids, len(frames))
    per_block = max(1, CHUNK_SLOTS // W)

    def block(g0: int) -> GraphSet:  # the graphs of ~2600 windows from g0 on
        g1 = min(G, g0 + per_block)
        lo, hi = g0 * stride, (g1 - 1) * stride + W
        return _build_block(frames.timestamp[lo:hi], frames.can_id[lo:hi], payload64[lo:hi], frames.label[lo:hi],
                            g1 - g0, W, stride)

    for _, graphs in in_order(block, range(0, G, per_block)):  # blocks ahead on the other cores
        out.add(graphs)
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
    words = _grid(payload64, G, W, stride).reshape(-1)[slot]  # payloads sorted by (id, time) in each window
    x[:, :8] = _byte_means(words, ends, counts, W)
    x[:, 8] = counts / W
    x[:, 9] = np.log1p(iat_ms) * TIME_SCALE
    x[:, 10] = _segment_sums(pos, ends) / (counts * float(W))
    # bytes changed since the id's previous frame: entry p against p - 1 when both belong to one node
    changed = np.zeros(S, np.int64)
    changed[1:] = _nonzero_bytes(words[1:] ^ words[:-1])
    changed[is_first.reshape(-1)] = 0
    del words
    x[:, 11] = _segment_sums(changed, ends) / (np.maximum(counts - 1, 1) * 8.0)
    del changed

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


def _nonzero_bytes(words: np.ndarray) -> np.ndarray:
    """How many of the 8 bytes of each uint64 word are not zero (0..8), without unpacking the bytes: each
    byte's bits folded into its lowest bit, then counted (numpy's popcount)."""
    w = words | (words >> np.uint64(4))
    w |= w >> np.uint64(2)
    w |= w >> np.uint64(1)
    w &= np.uint64(0x0101010101010101)  # bit 0 of each byte: is the byte non-zero
    return np.bitwise_count(w)


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

