"""KD-GAT models: shapes, sizes, the distillation loss, the VGAE and the fusion agent.

Tiny random graphs built directly with PyG; everything seeded; the whole file
runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

import torch  # noqa: E402

from torch_geometric.data import Batch, Data  # noqa: E402

from kdgat.data.features import NODE_FEATURES  # noqa: E402
from kdgat.models import count_parameters  # noqa: E402
from kdgat.models.fusion import ALPHAS, STATE_DIM, FusionAgent, QNetwork, fusion_state, rewards  # noqa: E402
from kdgat.models.gat import EVIDENCE_GAIN, GATClassifier, kd_loss  # noqa: E402
from kdgat.models.profile import NormalProfile, normal_nodes  # noqa: E402
from kdgat.models.vgae import GraphVGAE, _quantile, neighbor_targets  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from kdgat.config import CONF_DIR  # noqa: E402
from kdgat.stages.registry import scale_gat as gat_sizes  # noqa: E402

# The sizes of conf/config.yaml, the one place they are set.
SIZES = OmegaConf.load(CONF_DIR / "config.yaml").models

F_IN = len(NODE_FEATURES)


def random_graph(gen: torch.Generator, n: int, num_ids: int, e: int | None = None, y: int = 0) -> Data:
    e = 2 * n if e is None else e
    return Data(
        x=torch.rand(n, F_IN, generator=gen),
        node_id=torch.randint(0, num_ids, (n,), generator=gen),
        edge_index=torch.randint(0, n, (2, e), generator=gen),
        edge_attr=torch.rand(e, 2, generator=gen),
        y=torch.tensor([y]),
    )


def random_batch(seed: int = 0, sizes=(3, 7, 1, 5), num_ids: int = 10) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([random_graph(gen, n, num_ids, y=i % 2) for i, n in enumerate(sizes)])


def test_package_import_does_not_import_torch():
    code = "import sys, kdgat.models as m; assert 'torch' not in sys.modules, 'torch imported'; m.count_parameters"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- GAT


@pytest.mark.parametrize("size,scale", [("teacher", 1.0), ("student", 0.5), ("student", 0.25)])
def test_gat_forward_shapes(size, scale):
    torch.manual_seed(0)
    model = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat[size], scale))
    batch = random_batch()
    logits = model(batch)
    assert logits.shape == (4, 2) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert model.embed(batch).shape == (4, model.out_dim)
    model.eval()
    single = batch.get_example(1)
    single_logits = model(Data(x=single.x, node_id=single.node_id, edge_index=single.edge_index,
                               edge_attr=single.edge_attr))  # fmt: skip
    assert single_logits.shape == (1, 2)
    assert torch.allclose(single_logits, model(batch)[1:2], atol=1e-5)  # graphs do not leak into each other
    probs = model.attack_probability(batch)
    assert probs.shape == (4,) and ((probs >= 0) & (probs <= 1)).all()


def test_gat_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat.student, 0.5))
    batch = random_batch(sizes=(4, 6, 5))
    batch.node_id = torch.arange(batch.num_nodes) % 10
    torch.nn.functional.cross_entropy(model(batch), batch.y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_gat_sizes():
    # The teacher's sizes, and the student's at the reference scale 0.5.
    on = dict(envelope=True, evidence=True, drift=2.0)
    assert gat_sizes(SIZES.gat.teacher) == dict(hidden=64, layers=5, heads=8, embedding=32, **on)
    assert gat_sizes(SIZES.gat.student, 0.5) == dict(hidden=24, layers=2, heads=4, embedding=8, **on)
    assert gat_sizes(SIZES.gat.student, 0.25) == dict(hidden=12, layers=2, heads=4, embedding=4, **on)
    assert gat_sizes(SIZES.gat.student, 0.75) == dict(hidden=36, layers=2, heads=4, embedding=12, **on)
    with pytest.raises(ValueError):
        gat_sizes(SIZES.gat.student, 0)


@pytest.mark.parametrize("num_ids", [60, 2000])
def test_student_parameter_counts(num_ids):
    teacher = count_parameters(GATClassifier(num_ids, F_IN, **gat_sizes(SIZES.gat.teacher)))
    students = {s: count_parameters(GATClassifier(num_ids, F_IN, **gat_sizes(SIZES.gat.student, s))) for s in (0.25, 0.5, 0.75)}
    assert teacher > 1_000_000  # 512-wide layers, as in the reference
    assert students[0.5] * 6 <= teacher
    assert students[0.25] < students[0.5] < students[0.75] < teacher


# --------------------------------------------------------------------------- per-ID normal profile


def test_profile_measures_known_ids_and_their_means():
    import numpy as np

    # ids 1 and 2 in 6 normal windows each, id 3 in only 2: too few for a profile of its own
    node_id = np.array([1] * 6 + [2] * 6 + [3] * 2)
    x = np.zeros((14, 2))
    x[:6, 0] = 0.2
    x[6:12, 1] = 0.6
    x[12:, 0] = 0.9
    prof = NormalProfile(5, 2).fit(node_id, x)
    assert prof.ids(torch.tensor([0, 1, 2, 3, 4])).tolist() == [0, 1, 2, 0, 0]
    dev = prof.deviation(torch.tensor([1, 2, 3]), torch.tensor([[0.2, 0.0], [0.0, 0.1], [0.0, 0.0]]))
    overall = x.mean(axis=0)
    assert torch.allclose(dev[0], torch.zeros(2), atol=1e-6)  # id 1 at its usual values
    assert torch.allclose(dev[1], torch.tensor([0.0, -0.5]), atol=1e-6)  # id 2's field 1 is 0.5 below its mean
    assert torch.allclose(dev[2], -torch.tensor(overall, dtype=torch.float32), atol=1e-6)  # id 3: all nodes' mean
    # compact classes: the known ids renumbered 1..K, every other id class 0
    compact = NormalProfile(5, 2, classes=3).fit(node_id, x)
    assert compact.ids(torch.tensor([0, 1, 2, 3, 4])).tolist() == [0, 1, 2, 0, 0]
    with pytest.raises(ValueError):
        NormalProfile(5, 2, classes=2).fit(node_id, x)  # 2 known ids + "other" need 3 classes


def test_profile_envelope_is_zero_on_normal_nodes_and_measures_how_far_outside():
    import numpy as np

    node_id = np.array([1] * 6 + [2] * 6)
    x = np.zeros((12, 2))
    x[:6, 0] = np.linspace(0.2, 0.5, 6)  # id 1's signal: 0.2..0.5
    x[6:, 1] = 0.6
    prof = NormalProfile(5, 2, envelope=True).fit(node_id, x)
    assert torch.equal(prof.excess(torch.from_numpy(node_id), torch.from_numpy(x).float()), torch.zeros(12, 2))
    out = prof.excess(torch.tensor([1, 1, 2]), torch.tensor([[0.87, 0.0], [0.1, 0.0], [0.0, 0.6]]))
    assert torch.allclose(out, torch.tensor([[0.37, 0.0], [0.1, 0.0], [0.0, 0.0]]), atol=1e-6)
    # an unknown id (4) is judged against the range of every normal node
    assert torch.allclose(prof.excess(torch.tensor([4]), torch.tensor([[0.55, 0.7]])), torch.tensor([[0.05, 0.1]]),
                          atol=1e-6)


def test_a_gat_saved_before_the_envelope_loads_as_it_was_trained():
    import numpy as np

    old = GATClassifier(10, F_IN, **{**gat_sizes(SIZES.gat.student, 0.5), "envelope": False, "evidence": False,
                                     "drift": 0.0})
    old.profile.fit(np.repeat(np.arange(1, 6), 5), np.random.default_rng(0).random((25, F_IN)))
    # a checkpoint's config from before
    saved = {k: v for k, v in old.config.items() if k not in ("envelope", "evidence", "drift")}
    again = GATClassifier(**saved)
    again.load_state_dict(old.state_dict())
    batch = random_batch(num_ids=10)
    old.eval(), again.eval()
    assert torch.equal(old(batch), again(batch))
    new = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat.student, 0.5))
    assert new.profile.envelope  # the configured sizes turn it on
    with pytest.raises(RuntimeError):
        new.load_state_dict(old.state_dict())  # the first layer's inputs differ


def _fitted_student(evidence: bool = True, drift: float = 0.0) -> GATClassifier:
    """A student GAT whose profile says IDs 1-5 keep every feature in [0.2, 0.6]."""
    gen = torch.Generator().manual_seed(0)
    model = GATClassifier(10, F_IN, **{**gat_sizes(SIZES.gat.student, 0.5), "evidence": evidence, "drift": drift})
    x = 0.2 + 0.4 * torch.rand(50, F_IN, generator=gen)
    x[:5], x[5:10] = 0.2, 0.6  # each ID's range reaches both ends
    model.profile.fit(torch.arange(50).remainder(5).add(1).numpy(), x.numpy())
    return model.eval()


CHANGED = NODE_FEATURES.index("changed")


def _window(value: float, feature: int = 3) -> Data:
    """Five nodes of IDs 1-5 inside their range, except node 2's `feature` set to `value`."""
    x = torch.full((5, F_IN), 0.4)
    x[:, CHANGED] = 0.6  # the top of the range: at or above every ID's usual rate
    x[2, feature] = value
    return Data(x=x, node_id=torch.arange(1, 6), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]),
                edge_attr=torch.rand(4, 2, generator=torch.Generator().manual_seed(1)), y=torch.tensor([0]))


def test_the_evidence_path_is_zero_inside_the_envelope_and_grows_with_the_excess():
    model = _fitted_student()
    assert model.excess_evidence(Batch.from_data_list([_window(0.5)])).item() == 0.0
    with torch.no_grad():
        evidence = [model.excess_evidence(Batch.from_data_list([_window(v)])).item() for v in (0.6, 0.7, 0.8, 0.95)]
    assert evidence[0] == 0.0 and evidence[1] > 0  # 0.6 is the range's top, 0.7 is outside it
    assert evidence == sorted(evidence) and len(set(evidence)) == 4  # further out, more evidence
    low = model.excess_evidence(Batch.from_data_list([_window(0.0)])).item()
    assert low > 0  # below the range counts as much as above it


def test_the_evidence_is_added_to_the_attack_logit_alone():
    with_it, without = _fitted_student(), _fitted_student(evidence=False)
    state = {k: v for k, v in with_it.state_dict().items() if not k.startswith("evidence.")}
    without.load_state_dict(state)
    batch = Batch.from_data_list([_window(0.9), _window(0.4)])
    with torch.no_grad():
        diff = with_it(batch) - without(batch)
        evidence = with_it.excess_evidence(batch)
    assert torch.allclose(diff[:, 0], torch.zeros(2))
    assert torch.allclose(diff[:, 1], evidence) and evidence[0] > 0 and evidence[1] == 0


def test_evidence_needs_the_envelope():
    with pytest.raises(ValueError, match="evidence and drift need envelope"):
        GATClassifier(10, F_IN, **{**gat_sizes(SIZES.gat.student, 0.5), "envelope": False, "evidence": True})


def test_drift_moves_each_ids_varying_bytes_together_and_nothing_else():
    model = _fitted_student(drift=2.0)
    model.profile.low[3, 5] = model.profile.high[3, 5] = 0.4  # ID 3's byte 5 is constant in normal traffic
    x = torch.full((6, F_IN), 0.4)
    batch = Batch.from_data_list([Data(x=x, node_id=torch.tensor([1, 3, 3, 5, 5, 0]),
                                       edge_index=torch.tensor([[0], [1]]), edge_attr=torch.rand(1, 2))])
    torch.manual_seed(0)
    moved = model.drifted(batch)
    assert torch.equal(moved[:, 8:], x[:, 8:])  # count, timing, position, changed: untouched
    assert torch.equal(moved[1], moved[2]) and torch.equal(moved[3], moved[4])  # one offset per ID and byte
    assert moved[1, 5] == 0.4 and not torch.equal(moved[1, :8], x[1, :8])
    # the normal range is [0.2, 0.6]: offsets of up to 2 x 0.4 either way, then kept in [0, 1]
    assert (moved - x).abs().max() <= 0.8 + 1e-6 and moved.min() >= 0 and moved.max() <= 1
    plain = _fitted_student(drift=0.0)
    plain.load_state_dict(model.state_dict())
    model.eval()
    assert torch.equal(model(batch), plain(batch))  # evaluation never moves anything


def test_changed_below_its_ids_usual_rate_is_outside_the_range():
    model = _fitted_student()
    usual = model.profile.mean[3, CHANGED].item()
    assert model.profile.low[3, CHANGED].item() == pytest.approx(usual)
    held, half, updated = (_window(v, feature=CHANGED) for v in (0.0, usual / 2, usual + 0.01))
    excess = [model.profile.excess(w.node_id, w.x)[2, CHANGED].item() for w in (held, half, updated)]
    assert excess == pytest.approx([1.0, 0.5, 0.0])  # the share of the usual changes that is missing
    model.profile.low[3, CHANGED] = 1 / 16  # an ID that changes a byte every other frame: held is half as odd
    assert model.profile.excess(held.node_id, held.x)[2, CHANGED].item() == pytest.approx(0.5)


def test_with_drift_a_held_signal_is_flagged_and_a_drifted_one_is_not():
    """Training attacks hold ID 3's byte 0 high, some with its bytes still; the test's normal window has
    that byte higher than any training normal one, still changing. Without drift the model flags it for
    the value; with drift, it tells a drifted value from a held one."""

    def window(value: float, held: bool, y: int) -> Data:
        w = _window(value, feature=0)
        if held:
            w.x[2, CHANGED] = 0.0
        w.y = torch.tensor([y])
        return w

    def flagged(drift: float) -> list[bool]:
        torch.manual_seed(0)
        model = _fitted_student(drift=drift).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        # every attack holds the value at 0.95, half of them hold the bytes still too: the value alone is
        # the one perfect cue, as on the hcrl_sa-sized data
        train = Batch.from_data_list([window(0.95, i % 4 == 1, 1) if i % 2 else window(0.3 + 0.02 * (i % 8), False, 0)
                                      for i in range(32)])
        for _ in range(150):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(train), train.y).backward()
            optimizer.step()
        model.eval()
        test = Batch.from_data_list([window(0.85, False, 0), window(0.5, True, 1)])
        return (model(test).argmax(1) == 1).tolist()

    assert flagged(0.0)[0]  # the value decides: the drifted normal window is flagged
    assert flagged(2.0) == [False, True]  # the held bytes decide


def test_the_evidence_weights_learn_the_cell_that_attacks_leave():
    # Attack windows push one (ID, feature) cell out of range; a few dozen steps of the ordinary training
    # loop raise that cell's weight above every other cell's.
    import numpy as np

    torch.manual_seed(0)
    model = _fitted_student()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    windows = [_window(0.9 if i % 2 else 0.4) for i in range(16)]
    for w, i in zip(windows, range(16)):
        w.y = torch.tensor([i % 2])
    batch = Batch.from_data_list(windows)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(batch), batch.y).backward()
        optimizer.step()
    with torch.no_grad():
        ids = model.profile.ids(torch.arange(10))
        weight = torch.nn.functional.softplus(EVIDENCE_GAIN * model.evidence(model.id_embedding(ids))).numpy()
    assert np.unravel_index(weight[1:6].argmax(), weight[1:6].shape) == (2, 3)  # ID 3 (node 2), feature 3


def test_profile_travels_with_the_state_dict():
    import numpy as np

    gen = torch.Generator().manual_seed(0)
    batch = random_batch(num_ids=10)
    a = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat.student, 0.5))
    a.profile.fit(np.repeat(np.arange(1, 6), 5), torch.rand(25, F_IN, generator=gen).numpy())
    b = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat.student, 0.5))
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    assert torch.equal(a.profile.id_map, b.profile.id_map) and torch.equal(a(batch), b(batch))
    assert b.profile.ids(torch.arange(10)).tolist() == [0, 1, 2, 3, 4, 5, 0, 0, 0, 0]


def test_normal_nodes_takes_the_nodes_of_normal_windows():
    import numpy as np
    from types import SimpleNamespace

    g = SimpleNamespace(y=np.array([0, 1, 0]), node_ptr=np.array([0, 2, 5, 6]), node_id=np.arange(6),
                        x=np.arange(12.0).reshape(6, 2))
    ids, x = normal_nodes(g)
    assert ids.tolist() == [0, 1, 5] and x[:, 0].tolist() == [0.0, 2.0, 10.0]


def test_count_parameters_counts_scalars():
    assert count_parameters(torch.nn.Linear(3, 4)) == 3 * 4 + 4
    lin = torch.nn.Linear(3, 4)
    lin.bias.requires_grad_(False)
    assert count_parameters(lin, trainable_only=True) == 12


# --------------------------------------------------------------------------- distillation loss


def test_kd_loss_matches_hand_computation():
    s = [[1.0, 2.0], [0.5, -0.5]]
    t = [[2.0, 0.0], [0.0, 1.0]]
    y = [1, 0]
    T, a = 4.0, 0.7

    def softmax(row, temp=1.0):
        e = [math.exp(v / temp) for v in row]
        return [v / sum(e) for v in e]

    kl = 0.0
    for srow, trow in zip(s, t):
        ps, pt = softmax(srow, T), softmax(trow, T)
        kl += sum(pt[k] * (math.log(pt[k]) - math.log(ps[k])) for k in range(2))
    kl /= 2  # batchmean
    ce = -sum(math.log(softmax(srow)[yi]) for srow, yi in zip(s, y)) / 2
    expected = a * T * T * kl + (1 - a) * ce

    got = kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), T=T, alpha=a)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # alpha = 0 is plain cross-entropy; the teacher gets no gradient
    assert kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), alpha=0.0).item() == pytest.approx(ce, rel=1e-5)
    teacher = torch.tensor(t, requires_grad=True)
    kd_loss(torch.tensor(s, requires_grad=True), teacher, torch.tensor(y)).backward()
    assert teacher.grad is None


def test_distillation_shows_the_teacher_the_drifted_input_the_student_sees():
    from kdgat.stages.distillation import batch_loss

    teacher, student = _fitted_student(), _fitted_student(drift=2.0).train()
    seen = {}
    teacher.register_forward_pre_hook(lambda m, args: seen.update(teacher=args[1].clone()))
    student.register_forward_pre_hook(lambda m, args: seen.update(student=args[1].clone()))
    batch = Batch.from_data_list([_window(0.5), _window(0.9)])
    torch.manual_seed(0)
    loss = batch_loss(student, student, teacher, batch, T=4.0, alpha=0.7)
    assert torch.equal(seen["teacher"], seen["student"])  # one input for both
    assert not torch.equal(seen["student"][:, :8], batch.x[:, :8])  # and it is drifted
    torch.manual_seed(0)
    moved = student.drifted(batch)  # the same draw: the loss is kd_loss on the teacher's answer to it
    assert torch.equal(seen["student"], moved)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())  # the teacher learns nothing
    assert student.id_embedding.weight.grad is not None


# --------------------------------------------------------------------------- VGAE


def pattern_graph(gen: torch.Generator, n: int = 8) -> Data:
    """A 'normal' window: ids 1..n in a ring, features a fixed function of the id plus small noise."""
    ids = torch.arange(1, n + 1)
    x = torch.stack([(ids * (k + 1) % 7).float() / 7 for k in range(F_IN)], dim=1)
    x = x + 0.02 * torch.randn(n, F_IN, generator=gen)
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    return Data(x=x, node_id=ids, edge_index=ring, edge_attr=torch.full((n, 2), 0.5), y=torch.tensor([0]))


def test_vgae_shapes_and_neighbor_targets():
    torch.manual_seed(0)
    model = GraphVGAE(10, F_IN, **dict(SIZES.vgae.student))
    batch = random_batch()
    out = model(batch)
    n = batch.num_nodes
    assert out["x_hat"].shape == (n, F_IN)
    assert out["id_logits"].shape == out["nbr_logits"].shape == (n, 10)
    assert out["mu"].shape == out["logvar"].shape == (n, dict(SIZES.vgae.student)["latent"])
    target = neighbor_targets(batch, 10)
    src, dst = batch.edge_index
    assert target[src, batch.node_id[dst]].eq(1).all()
    assert target.sum() == len(set(zip(src.tolist(), batch.node_id[dst].tolist())))
    assert model.anomaly_score(batch).shape == (4,)


def test_vgae_loss_finite_and_decreasing():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = GraphVGAE(20, F_IN, **dict(SIZES.vgae.student))
    batch = Batch.from_data_list([random_graph(gen, 6, 20) for _ in range(8)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    before, parts = model.loss(batch)
    assert math.isfinite(before.item()) and set(parts) == {"feature", "id", "neighbor", "kl", "loss"}
    model.train()
    for _ in range(30):
        opt.zero_grad()
        loss, _ = model.loss(batch)
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    model.eval()
    after, _ = model.loss(batch)
    assert after.item() < 0.7 * before.item()


def train_vgae(model, batch, steps: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch)[0].backward()
        opt.step()


def test_vgae_anomaly_score_flags_outliers():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = GraphVGAE(20, F_IN, **dict(SIZES.vgae.student))
    train = Batch.from_data_list([pattern_graph(gen) for _ in range(16)])
    train_vgae(model, train, steps=150)

    normal = Batch.from_data_list([pattern_graph(gen) for _ in range(20)])
    outliers = []
    for _ in range(20):
        g = pattern_graph(gen)
        g.x = torch.rand(g.num_nodes, F_IN, generator=gen)  # random features, same ids and ring
        outliers.append(g)
    outliers = Batch.from_data_list(outliers)
    model.train()  # anomaly_score must be deterministic even when called in training mode
    s_normal, s_out = model.anomaly_score(normal), model.anomaly_score(outliers)
    assert model.training  # mode restored
    assert torch.equal(s_normal, model.anomaly_score(normal))
    assert s_out.min() > s_normal.max()
    assert s_out.mean() > 5 * s_normal.mean()
    nodes = model.node_scores(outliers)
    per_graph_max = torch.stack([nodes[outliers.batch == i].max() for i in range(outliers.num_graphs)])
    assert torch.equal(s_out, per_graph_max)  # max over nodes

    # max over nodes: one corrupted node in an otherwise normal window is enough
    g = pattern_graph(gen)
    g.x[3] = torch.rand(F_IN, generator=gen)
    one = model.anomaly_score(Batch.from_data_list([g]))
    assert one.item() > s_normal.max().item()


def test_vgae_decodes_over_the_ids_of_normal_traffic_and_scales_its_score():

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    windows = [pattern_graph(gen) for _ in range(16)]  # ids 1..8 in every window
    normal = Batch.from_data_list(windows)
    node_id, x = normal.node_id.numpy(), normal.x.numpy()
    classes = NormalProfile.classes_for(node_id, 50)
    assert classes == 9
    model = GraphVGAE(50, F_IN, classes=classes, **dict(SIZES.vgae.student))
    model.profile.fit(node_id, x)
    out = model(normal)
    assert out["id_logits"].shape == out["nbr_logits"].shape == (normal.num_nodes, 9)
    train_vgae(model, normal, steps=100)
    model.fit_score([normal])
    assert model.training  # mode restored
    # on the windows it was scaled on, each term's median is 0 and its 99th percentile 1
    model.eval()
    terms = torch.stack(model._terms(normal), dim=-1)
    standard = (terms - model.score_center) / model.score_scale
    assert torch.allclose(standard.median(dim=0).values, torch.zeros(2), atol=1e-5)
    assert torch.allclose(torch.quantile(standard, 0.99, dim=0), torch.ones(2), atol=1e-4)
    assert (model.residual_scale >= 0.01).all()
    # an ID normal traffic never has (30) is class 0, and a window with it scores above every normal one
    g = pattern_graph(gen)
    g.node_id[2] = 30
    assert model.profile.ids(torch.tensor([30])).item() == 0
    assert model.anomaly_score(Batch.from_data_list([g])).item() > model.anomaly_score(normal).max().item()
    # saved and loaded like every model: config + state_dict, scales included
    again = GraphVGAE(**model.config)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.anomaly_score(normal), model.anomaly_score(normal))


def test_score_quantile_matches_torch_and_has_no_size_limit():
    values = torch.randn(1001, 2, generator=torch.Generator().manual_seed(0))
    for q in (0.0, 0.5, 0.99, 1.0):
        assert torch.allclose(_quantile(values, q), torch.quantile(values, q, dim=0))
    big = torch.arange(2**24 + 3, dtype=torch.float32).unsqueeze(1)  # torch.quantile refuses this many
    assert _quantile(big, 0.5).item() == (2**24 + 2) / 2


def test_vgae_sizes_parameter_counts():
    teacher = count_parameters(GraphVGAE(60, F_IN, **dict(SIZES.vgae.teacher)))
    student = count_parameters(GraphVGAE(60, F_IN, **dict(SIZES.vgae.student)))
    assert student * 4 < teacher


# --------------------------------------------------------------------------- fusion


def fusion_scenario(n: int, gat_right: bool, seed: int):
    """One model always on the right side of 0.5 (confidence 0.05..0.5), the other uniform noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    margin = 0.05 + 0.45 * torch.rand(n, generator=gen)
    good = torch.where(y == 1, 0.5 + margin, 0.5 - margin).clamp(0, 1)
    noise = torch.rand(n, generator=gen)
    p_gat, s_vgae = (good, noise) if gat_right else (noise, good)
    return fusion_state(s_vgae, p_gat), y


def test_fusion_state_and_rewards():
    s = torch.tensor([0.2, 0.9])
    p = torch.tensor([0.7, 0.1])
    states = fusion_state(s, p)
    assert states.shape == (2, STATE_DIM)
    assert torch.allclose(states[:, 0], s) and torch.allclose(states[:, 1], p)
    assert ALPHAS.shape == (21,) and ALPHAS[1].item() == pytest.approx(0.05)
    # α = 1 trusts the GAT (0.7 -> attack, 0.1 -> normal); α = 0 trusts the VGAE (0.2 -> normal, 0.9 -> attack)
    labels = torch.tensor([1, 0])
    assert rewards(torch.tensor([20, 20]), states, labels).tolist() == [1.0, 1.0]
    assert rewards(torch.tensor([0, 0]), states, labels).tolist() == [-1.0, -1.0]
    assert rewards(torch.tensor([0, 0]), states, labels, wrong_reward=0.0).tolist() == [0.0, 0.0]
    # margin: + margin * (2y - 1) * (2 * fused - 1); α = 1 fuses to the GAT's 0.7 and 0.1, α = 0 to 0.2 and 0.9
    got = rewards(torch.tensor([20, 0]), states, labels, margin=0.5)
    assert got.tolist() == pytest.approx([1 + 0.5 * 0.4, -1 - 0.5 * 0.8])
    # a right decision always outscores a wrong one, and among right ones the more confident wins
    fine = rewards(torch.tensor([20, 15, 10]), states[:1].repeat(3, 1), labels[:1].repeat(3), margin=0.5)
    assert fine[0] > fine[1] > 1 > -1 > fine[2]  # α = 1 fuses to 0.7, α = 0.75 to 0.575, α = 0.5 to 0.45
    assert QNetwork(STATE_DIM, 21, 16)(states).shape == (2, 21)


def test_the_prior_costs_the_distance_from_the_better_inputs_weight_and_never_flips_a_decision():
    states, labels = fusion_state(torch.tensor([0.2]), torch.tensor([0.7])), torch.tensor([1])
    plain = rewards(torch.arange(21), states.repeat(21, 1), labels.repeat(21), margin=0.5)
    leaning = rewards(torch.arange(21), states.repeat(21, 1), labels.repeat(21), margin=0.5, prior=0.1,
                      prior_alpha=1.0)
    assert torch.allclose(plain - leaning, 0.1 * (ALPHAS - 1.0).abs())
    right = plain > 0
    assert leaning[right].min() > leaning[~right].max()  # every right weight still beats every wrong one


def test_with_the_prior_the_agent_keeps_to_the_better_input_where_its_windows_say_nothing():
    # Learned where the GAT is always confidently right (|p - 0.5| >= 0.3) and the VGAE is noise; asked about
    # windows it never saw: an unsure GAT (0.6 or 0.4) against a VGAE that says the opposite.
    states, labels = fusion_scenario(4000, True, seed=1)
    sure = states[:, 2] >= 0.6
    unseen = fusion_state(torch.tensor([0.4, 0.35, 0.6, 0.65]), torch.tensor([0.6, 0.6, 0.4, 0.4]))
    for seed in range(4):  # without the prior, seed 3 follows the VGAE on the third window (alpha 0.45)
        agent = FusionAgent(seed=seed, margin=0.5, prior=0.1, prior_alpha=1.0)
        agent.fit(states[sure], labels[sure], steps=600, batch_size=128)
        assert ((agent.fuse(unseen) >= 0.5) == (unseen[:, 1] >= 0.5)).all(), (seed, agent.alphas(unseen))


@pytest.mark.parametrize("gat_right", [True, False])
def test_fusion_agent_learns_whom_to_trust(gat_right):
    states, labels = fusion_scenario(4000, gat_right, seed=1)
    agent = FusionAgent(seed=0)
    agent.fit(states, labels, steps=600, batch_size=128)

    test_states, test_labels = fusion_scenario(2000, gat_right, seed=2)
    alpha = agent.alphas(test_states)
    accuracy = ((agent.fuse(test_states) >= 0.5).long() == test_labels).float().mean().item()
    disagree = (test_states[:, 0] >= 0.5) != (test_states[:, 1] >= 0.5)
    assert accuracy >= 0.95  # the noisy model alone gets ~0.5
    if gat_right:
        assert alpha.mean() > 0.65 and alpha[disagree].mean() > 0.8
    else:
        assert alpha.mean() < 0.35 and alpha[disagree].mean() < 0.2


def test_fusion_agent_is_deterministic_and_leaves_global_rng_alone():
    states, labels = fusion_scenario(500, True, seed=3)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = FusionAgent(seed=7), FusionAgent(seed=7)
    assert torch.equal(torch.rand(1), expected_next)  # building an agent does not consume the global RNG
    la = a.fit(states, labels, steps=50, batch_size=64)
    lb = b.fit(states, labels, steps=50, batch_size=64)
    assert la == lb
    assert torch.equal(a.alphas(states), b.alphas(states))
    assert not torch.equal(FusionAgent(seed=8).q_values(states), FusionAgent(seed=7).q_values(states))
    explore = a.act(states, epsilon=1.0)
    assert explore.min() >= 0 and explore.max() < len(ALPHAS) and explore.unique().numel() > 10
