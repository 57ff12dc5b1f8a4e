"""Stage `distillation`: a student GAT learning from the teacher GAT's softened outputs.

loss = alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE(student, label).
"""

from __future__ import annotations

from typing import Any

import torch

from kdgat import artifacts
from kdgat.metrics import binary_metrics
from kdgat.models import count_parameters
from kdgat.models.gat import GATClassifier, kd_loss
from kdgat.models.profile import normal_nodes
from kdgat.stages.common import StageRun, evaluate, in_features, load_model, predict, save_model, splits


def batch_loss(net, student: GATClassifier, teacher: GATClassifier, batch, T: float, alpha: float) -> torch.Tensor:
    """The distillation loss of one batch, the teacher's targets computed on the input the student sees.

    In training the student's input drifts (GATClassifier.drifted). Targets from the undrifted window
    taught the student the teacher's answer to another input than its own: at the hcrl_sa size its
    masquerade windows sat at the decision boundary (F1 0.976 against the teacher's 0.992); with the
    teacher shown the same drifted window, 0.997. `net` is the student, or it wrapped for several ranks.
    """
    x = student.drifted(batch) if student.drift > 0 else batch.x
    with torch.no_grad():
        soft = teacher(batch, x)
    return kd_loss(net(batch, x), soft, batch.y, T=T, alpha=alpha)


def distillation(run: StageRun) -> dict[str, Any]:
    teacher, _ = load_model(run.inputs["teacher"], GATClassifier, run.device)
    if teacher.config["num_ids"] != run.num_ids:
        raise RuntimeError("the teacher GAT was trained with another vocabulary than this dataset's")
    student = GATClassifier(num_ids=run.num_ids, **in_features(), **artifacts.model_sizes(run.cfg, run.name))
    student.profile.fit(*normal_nodes(run.data.train))  # the teacher's profile: the same windows, the same fit
    student = student.to(run.device)
    T, alpha = float(run.node.temperature), float(run.node.alpha)

    def train_epoch(epoch, bar, optimizer, net):
        total, n = 0.0, 0
        for batch in bar(run.training_batches(run.data.train, epoch)):
            optimizer.zero_grad()
            loss = batch_loss(net, student, teacher, batch, T, alpha)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * batch.num_graphs, n + batch.num_graphs
        return {"train_loss": run.average(total, n)}

    def validate():
        return {"val_f1": binary_metrics(run.data.val.y, predict(run, student.attack_probability, run.data.val))["f1"]}

    training = run.fit(student, run.node.lr, train_epoch, validate, monitor="val_f1", mode="max")
    student.eval()
    scored = {split: (g.y, predict(run, student.attack_probability, g)) for split, g in splits(run).items()}
    save_model(run.art.model, student)
    return {"parameters": count_parameters(student), "teacher_parameters": count_parameters(teacher),
            "scale": float(run.node.scale), "threshold": 0.5, "splits": evaluate(scored, 0.5), "training": training}
