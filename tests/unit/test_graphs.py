"""Frames to graphs: a window worked out by hand, windowing, vocabulary, graph sets, PyG batches."""

from __future__ import annotations

import numpy as np
import pytest

from kdgat.data.frames import Frames
from kdgat.data.features import EDGE_FEATURES, NODE_FEATURES, TIME_SCALE
from kdgat.data.graphset import GraphSet
from kdgat.data.vocabulary import Vocabulary
from kdgat.data.windows import build_graphs, count_windows
from kdgat.errors import KdgatError


def frames_of(times_ms, ids, payloads, labels) -> Frames:
    n = len(ids)
    payload = np.zeros((n, 8), np.uint8)
    for i, p in enumerate(payloads):
        payload[i, : len(p)] = p
    return Frames(
        timestamp=1000.0 + np.asarray(times_ms, float) / 1e3,  # small base: exact ms steps
        can_id=np.asarray(ids, np.int32),
        dlc=np.full(n, 8, np.uint8),
        payload=payload,
        label=np.asarray(labels, np.uint8),
    )


def random_frames(n: int, seed: int = 0, n_ids: int = 12, attack_rate: float = 0.01) -> Frames:
    rng = np.random.default_rng(seed)
    ids = rng.choice(rng.choice(0x7FF, n_ids, replace=False), n)
    return Frames(
        timestamp=1_600_000_000.0 + np.cumsum(rng.exponential(0.5e-3, n)),
        can_id=ids.astype(np.int32),
        dlc=np.full(n, 8, np.uint8),
        payload=rng.integers(0, 256, (n, 8), dtype=np.uint8),
        label=(rng.random(n) < attack_rate).astype(np.uint8),
    )


def graph(gs: GraphSet, g: int) -> dict[str, np.ndarray]:
    a, b = gs.node_ptr[g], gs.node_ptr[g + 1]
    c, d = gs.edge_ptr[g], gs.edge_ptr[g + 1]
    return {
        "can_id": gs.can_id[a:b], "node_id": gs.node_id[a:b], "x": gs.x[a:b],
        "edge_index": gs.edge_index[:, c:d], "edge_attr": gs.edge_attr[c:d], "y": gs.y[g],
    }  # fmt: skip


def assert_same_graph(g1: dict, g2: dict) -> None:
    for k in ("can_id", "node_id", "edge_index", "y"):
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)
    np.testing.assert_allclose(g1["x"], g2["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g1["edge_attr"], g2["edge_attr"], rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- one window by hand

# t (ms)  id    payload         label
#  0      0x10  10              0
#  1      0x20  255 255         0
#  3      0x10  20              0
#  4      0x30  -               1   <- injected, and 0x30 is not in the vocabulary
#  7      0x10  30              0
#  8      0x20  1 1             0
HAND = frames_of(
    [0, 1, 3, 4, 7, 8],
    [0x10, 0x20, 0x10, 0x30, 0x10, 0x20],
    [[10], [255, 255], [20], [], [30], [1, 1]],
    [0, 0, 0, 1, 0, 0],
)


def test_window_by_hand():
    vocab = Vocabulary([0x20, 0x10])  # indices: 0 unknown, 0x10 -> 1, 0x20 -> 2
    gs = build_graphs(HAND, vocab, window=6, stride=6)
    assert len(gs) == 1
    g = graph(gs, 0)

    # nodes: distinct ids, ordered by CAN id
    np.testing.assert_array_equal(g["can_id"], [0x10, 0x20, 0x30])
    np.testing.assert_array_equal(g["node_id"], [1, 2, 0])
    expect_x = np.zeros((3, len(NODE_FEATURES)))
    # 0x10 at positions 0, 2, 4; times 0, 3, 7 ms
    expect_x[0, 0] = (10 + 20 + 30) / 3 / 255
    # changed: 10 -> 20 -> 30, one byte of 8 in each of 2 steps
    expect_x[0, 8:] = [3 / 6, np.log1p((7 - 0) / 2) * TIME_SCALE, (0 + 2 + 4) / 3 / 6, 2 / (2 * 8)]
    # 0x20 at positions 1, 5; times 1, 8 ms
    expect_x[1, 0] = expect_x[1, 1] = (255 + 1) / 2 / 255
    expect_x[1, 8:] = [2 / 6, np.log1p(8 - 1) * TIME_SCALE, (1 + 5) / 2 / 6, 2 / 8]
    # 0x30 once at position 3: no inter-arrival time, nothing to compare with
    expect_x[2, 8:] = [1 / 6, 0.0, 3 / 6, 0.0]
    np.testing.assert_allclose(g["x"], expect_x, atol=1e-6)

    # transitions 10->20 (1 ms), 20->10 (2), 10->30 (1), 30->10 (3), 10->20 (1); sorted by (src, dst)
    np.testing.assert_array_equal(g["edge_index"], [[0, 0, 1, 2], [1, 2, 0, 0]])
    expect_e = [[2 / 5, np.log1p(1.0) * TIME_SCALE], [1 / 5, np.log1p(1.0) * TIME_SCALE], [1 / 5, np.log1p(2.0) * TIME_SCALE], [1 / 5, np.log1p(3.0) * TIME_SCALE]]
    np.testing.assert_allclose(g["edge_attr"], expect_e, atol=1e-6)
    assert g["y"] == 1
    assert gs.x.dtype == np.float32 and gs.edge_attr.dtype == np.float32
    assert gs.edge_index.dtype == np.int64 and gs.y.dtype == np.int64
    assert gs.edge_attr.shape[1] == len(EDGE_FEATURES)


def test_changed_tells_a_held_signal_from_an_updated_one_whatever_its_value():
    """Two ids with the same mean bytes: one counts in byte 1 and holds byte 0, the other updates both."""
    held = [[200, k] for k in range(4)]
    updated = [[200 + (-1) ** k, k] for k in range(4)]
    frames = frames_of(range(16), [0x10, 0x20] * 4 + [0x10, 0x20] * 4, [p for pair in zip(held, updated) for p in pair] * 2,
                       [0] * 16)
    gs = build_graphs(frames, None, window=8, stride=8)
    col = NODE_FEATURES.index("changed")
    np.testing.assert_allclose(gs.x[:, col], [1 / 8, 2 / 8] * 2)
    np.testing.assert_allclose(gs.x[0, :2], gs.x[1, :2], atol=0.01)


def test_clean_window_is_normal_and_partial_window_dropped():
    frames = Frames.concat([HAND.take(slice(0, 3)), HAND.take(slice(4, 6)), HAND.take(slice(0, 3))])
    gs = build_graphs(frames, Vocabulary([0x10, 0x20]), window=4, stride=4)
    assert len(gs) == count_windows(8, 4, 4) == 2
    np.testing.assert_array_equal(gs.y, [0, 0])


def test_distinct_unknown_ids_stay_distinct_nodes():
    frames = frames_of([0, 1, 2, 3], [0x100, 0x200, 0x100, 0x300], [[]] * 4, [0] * 4)
    gs = build_graphs(frames, Vocabulary([0x100]), window=4, stride=4)
    np.testing.assert_array_equal(gs.can_id, [0x100, 0x200, 0x300])
    np.testing.assert_array_equal(gs.node_id, [1, 0, 0])


def test_out_of_order_timestamps_count_as_zero_time():
    frames = frames_of([5, 4, 6], [1, 1, 2], [[]] * 3, [0] * 3)
    gs = build_graphs(frames, None, window=3, stride=3)
    assert np.all(gs.x[:, 9] >= 0) and np.all(gs.edge_attr[:, 1] >= 0)
    assert gs.x[0, 9] == 0.0  # id 1: 5 ms then 4 ms


# --------------------------------------------------------------------------- windowing


def reference_graphs(frames: Frames, vocab: Vocabulary, window: int, stride: int) -> list[dict]:
    """Each window built on its own, from a slice of the frames: no shared state possible."""
    n = count_windows(len(frames), window, stride)
    out = []
    for g in range(n):
        one = build_graphs(frames.take(slice(g * stride, g * stride + window)), vocab, window, window)
        assert len(one) == 1
        out.append(graph(one, 0))
    return out


@pytest.mark.parametrize("window,stride", [(10, 3), (10, 10), (7, 9), (5, 1)])
def test_strides_match_windows_built_one_by_one(window, stride):
    frames = random_frames(203, seed=window + stride)
    vocab = Vocabulary(frames.can_id[:150])
    gs = build_graphs(frames, vocab, window, stride).validate()
    ref = reference_graphs(frames, vocab, window, stride)
    assert len(gs) == len(ref) == (203 - window) // stride + 1
    for g, expected in enumerate(ref):
        assert_same_graph(graph(gs, g), expected)


@pytest.mark.parametrize("n,extended", [(40, False), (300, True)])  # 300: 32-bit byte lanes
def test_a_single_window_matches_a_direct_computation(n, extended):
    """Independent loop-based computation of one random window (the hand case, but bigger)."""
    frames = random_frames(n, seed=3, n_ids=6, attack_rate=0.05)
    if extended:
        frames.can_id = frames.can_id + 0x1F000000  # 29-bit ids: no lookup table, binary search
    gs = build_graphs(frames, Vocabulary(frames.can_id[: n // 2]), window=n, stride=n)
    g = graph(gs, 0)
    ids = sorted(set(frames.can_id.tolist()))
    np.testing.assert_array_equal(g["can_id"], ids)
    t = (frames.timestamp - frames.timestamp[0]) * 1e3  # ms; epoch-sized values would lose precision
    for k, cid in enumerate(ids):
        where = np.flatnonzero(frames.can_id == cid)
        np.testing.assert_allclose(g["x"][k, :8], frames.payload[where].mean(0) / 255, atol=1e-6)
        iat = (t[where[-1]] - t[where[0]]) / (len(where) - 1) if len(where) > 1 else 0.0
        steps = (frames.payload[where][1:] != frames.payload[where][:-1]).sum()
        changed = steps / (8 * (len(where) - 1)) if len(where) > 1 else 0.0
        np.testing.assert_allclose(g["x"][k, 8:], [len(where) / n, np.log1p(iat) * TIME_SCALE, where.mean() / n, changed],
                                   atol=1e-5)
    known = sorted(set(frames.can_id[: n // 2].tolist()))
    np.testing.assert_array_equal(g["node_id"], [known.index(c) + 1 if c in known else 0 for c in ids])
    pairs = {}
    for p in range(n - 1):
        key = (ids.index(frames.can_id[p]), ids.index(frames.can_id[p + 1]))
        pairs.setdefault(key, []).append(t[p + 1] - t[p])
    keys = sorted(pairs)
    np.testing.assert_array_equal(g["edge_index"].T, keys)
    np.testing.assert_allclose(
        g["edge_attr"], [[len(pairs[k]) / (n - 1), np.log1p(np.mean(pairs[k])) * TIME_SCALE] for k in keys], rtol=1e-5, atol=1e-5
    )
    assert g["y"] == int(frames.label.max())


def test_count_windows_and_bad_settings():
    assert count_windows(99, 100, 100) == 0
    assert count_windows(100, 100, 100) == 1
    assert count_windows(250, 100, 100) == 2
    assert count_windows(250, 100, 50) == 4
    assert len(build_graphs(random_frames(99), None, 100, 100)) == 0
    for window, stride in [(1, 1), (10, 0), (0, 5)]:
        with pytest.raises(KdgatError):
            count_windows(100, window, stride)


def test_large_blocks_are_joined_correctly(monkeypatch):
    """Windows are built a block at a time; block edges must not show."""
    import kdgat.data.windows as windows_mod

    frames = random_frames(3000, seed=7)
    vocab = Vocabulary(frames.can_id)
    whole = build_graphs(frames, vocab, 20, 20)
    monkeypatch.setattr(windows_mod, "CHUNK_SLOTS", 70)  # 3 windows per block, with a short last one
    blocked = build_graphs(frames, vocab, 20, 20)
    for f in ("node_id", "can_id", "x", "edge_index", "edge_attr", "y", "node_ptr", "edge_ptr"):
        np.testing.assert_array_equal(getattr(whole, f), getattr(blocked, f), err_msg=f)


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary_unknown_slot_and_round_trip(tmp_path):
    vocab = Vocabulary([0x316, 0x43F, 0x316, 0x0A0])
    assert len(vocab) == 4  # three ids and the unknown slot
    np.testing.assert_array_equal(vocab.index(np.array([0x0A0, 0x316, 0x43F, 0x7FF, 0])), [1, 2, 3, 0, 0])
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temp file left behind
    big = Vocabulary([0x18FEF100, 0x0CF00400])  # extended ids
    np.testing.assert_array_equal(big.index(np.array([0x0CF00400, 5, 0x18FEF100, 0x1FFFFFFF])), [1, 0, 2, 0])
    empty = Vocabulary([])
    assert len(empty) == 1 and empty.index(np.array([5])).tolist() == [0]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KdgatError, match="bad.json"):
        Vocabulary.load(tmp_path / "bad.json")


# --------------------------------------------------------------------------- GraphSet


def test_graphset_save_load_subset_concat(tmp_path):
    frames = random_frames(1000, seed=1)
    gs = build_graphs(frames, Vocabulary(frames.can_id), 25, 25)
    gs.save(tmp_path / "g.npz")
    back = GraphSet.load(tmp_path / "g.npz")
    for f in ("node_id", "can_id", "x", "edge_index", "edge_attr", "y", "node_ptr", "edge_ptr"):
        np.testing.assert_array_equal(getattr(gs, f), getattr(back, f), err_msg=f)

    a, b = gs.subset(np.arange(0, 10)), gs.subset(np.arange(10, len(gs)))
    joined = GraphSet.concat([a, GraphSet.empty(), b])
    np.testing.assert_array_equal(joined.x, gs.x)
    np.testing.assert_array_equal(joined.edge_ptr, gs.edge_ptr)
    picked = gs.subset([7, 2, 7])
    assert len(picked) == 3
    assert_same_graph(graph(picked, 0), graph(gs, 7))
    assert_same_graph(graph(picked, 1), graph(gs, 2))
    assert_same_graph(graph(picked, 2), graph(gs, 7))

    data = (tmp_path / "g.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception):
        GraphSet.load(tmp_path / "cut.npz")


# --------------------------------------------------------------------------- PyG


def test_pyg_views_and_batches_agree():
    import torch
    from torch_geometric.data import Batch
    from torch_geometric.loader import DataLoader

    frames = random_frames(2000, seed=4)
    gs = build_graphs(frames, Vocabulary(frames.can_id[:1000]), 50, 50)
    data = gs.to_pyg()
    assert len(data) == len(gs)
    d = data[3]
    g = graph(gs, 3)
    assert torch.equal(d.x, torch.from_numpy(g["x"]))
    assert torch.equal(d.node_id, torch.from_numpy(g["node_id"]))
    assert torch.equal(d.edge_index, torch.from_numpy(g["edge_index"]))
    assert d.y.shape == (1,) and d.num_nodes == len(g["can_id"])

    ds = gs.as_dataset()
    idx = [5, 0, 11, 5]
    ref = Batch.from_data_list([ds[i] for i in idx])
    ours = ds.collate(idx)
    assert isinstance(ours, Batch) and ours.num_graphs == len(ours) == 4
    assert sorted(ours.keys()) == sorted(ref.keys())
    for k in ref.keys():
        assert ours[k].dtype == ref[k].dtype and torch.equal(ref[k], ours[k]), k
    for j, i in enumerate(idx):  # the batch splits back into the graphs it was made of
        nodes = slice(int(ours.ptr[j]), int(ours.ptr[j + 1]))
        own = ours.batch[ours.edge_index[0]] == j
        assert torch.equal(ours.x[nodes], ds[i].x) and torch.equal(ours.edge_attr[own], ds[i].edge_attr)
        assert torch.equal(ours.edge_index[:, own] - ours.ptr[j], ds[i].edge_index)

    seen = sum(b.num_graphs for b in DataLoader(ds, batch_size=16, shuffle=True))
    assert seen == len(gs)
    batches = list(ds.loader(16, shuffle=True, seed=3))
    assert sum(b.num_graphs for b in batches) == len(gs)
    assert torch.equal(torch.sort(torch.cat([b.y for b in batches])).values, torch.sort(torch.from_numpy(gs.y)).values)
