"""The KD-GAT classifier: shapes, gradients, sizes, parameter counts, old checkpoints.

Tiny random graphs built directly with PyG; everything seeded; runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from kdgat.models import count_parameters
from kdgat.models.gat import GATClassifier
from kdgat.stages.registry import scale_gat as gat_sizes

from model_inputs import F_IN, SIZES, random_batch


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


def test_count_parameters_counts_scalars():
    assert count_parameters(torch.nn.Linear(3, 4)) == 3 * 4 + 4
    lin = torch.nn.Linear(3, 4)
    lin.bias.requires_grad_(False)
    assert count_parameters(lin, trainable_only=True) == 12


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
