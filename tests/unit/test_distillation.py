"""Knowledge distillation: the KD loss against a hand computation, and the teacher shown the student's drifted
input.

Tiny random graphs built directly with PyG; everything seeded; runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch

from kdgat.models.gat import kd_loss

from model_inputs import _fitted_student, _window


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
