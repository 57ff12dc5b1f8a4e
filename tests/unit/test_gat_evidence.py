"""The GAT's per-ID envelope evidence and its training-time drift: zero inside the normal range, growing
outside it, added to the attack logit alone, learned where attacks leave their mark.

Tiny random graphs built directly with PyG; everything seeded; runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from kdgat.models.gat import EVIDENCE_GAIN, GATClassifier
from kdgat.stages.registry import scale_gat as gat_sizes

from model_inputs import CHANGED, F_IN, SIZES, _fitted_student, _window


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
