"""Stages `gat_normal` and `curriculum`: the GAT classifier, by plain or curriculum training.

Curriculum: every epoch sees all attack windows and the
normal windows the VGAE finds hardest (highest anomaly score first), the
normal:attack ratio rising linearly from `start_ratio` to `end_ratio`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn.functional as F

from kdgat import artifacts
from kdgat.data.graphset import GraphSet
from kdgat.errors import KdgatError
from kdgat.models import count_parameters
from kdgat.models.gat import GATClassifier
from kdgat.models.profile import normal_nodes
from kdgat.stages.common import StageRun, evaluate, in_features, predict, save_model, splits


def train_gat(run: StageRun, graphs_for_epoch) -> dict[str, Any]:
    """Train a GAT of the stage's size on `graphs_for_epoch(epoch)`; early stopping on validation F1."""
    from kdgat.metrics import binary_metrics

    model = GATClassifier(num_ids=run.num_ids, **in_features(), **artifacts.model_sizes(run.cfg, run.name))
    model.profile.fit(*normal_nodes(run.data.train))  # per-ID normal profile, from training windows only
    model = model.to(run.device)

    def train_epoch(epoch, bar, optimizer, net):
        total, n = 0.0, 0
        for batch in bar(run.training_batches(graphs_for_epoch(epoch), epoch)):
            optimizer.zero_grad()
            loss = F.cross_entropy(net(batch), batch.y)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * batch.num_graphs, n + batch.num_graphs
        return {"train_loss": run.average(total, n)}

    def validate():
        prob = predict(run, model.attack_probability, run.data.val)
        return {"val_f1": binary_metrics(run.data.val.y, prob)["f1"]}

    training = run.fit(model, run.node.lr, train_epoch, validate, monitor="val_f1", mode="max")
    model.eval()
    scored = {split: (g.y, predict(run, model.attack_probability, g)) for split, g in splits(run).items()}
    save_model(run.art.model, model)
    return {"parameters": count_parameters(model), "threshold": 0.5, "splits": evaluate(scored, 0.5),
            "training": training}


def gat_normal(run: StageRun) -> dict[str, Any]:
    return train_gat(run, lambda epoch: run.data.train)


def curriculum(run: StageRun) -> dict[str, Any]:
    from kdgat.stages.autoencoder import anomaly_scores

    start, end, epochs = float(run.node.start_ratio), float(run.node.end_ratio), max(run.epochs, 1)
    if not 0 < start <= end:
        raise KdgatError(f"curriculum needs 0 < start_ratio <= end_ratio; got start_ratio={start}, end_ratio={end}")
    train = run.data.train
    attacks = np.flatnonzero(train.y == 1)
    normals = np.flatnonzero(train.y == 0)
    if len(attacks) == 0:
        raise KdgatError(f"curriculum needs attack windows in the training split of {run.cfg.dataset.name}; "
                         "it has none (use gat_normal)")
    _, raw = anomaly_scores(run, run.inputs["vgae"], train.subset(normals))
    hardest_first = normals[np.argsort(-raw, kind="stable")]

    def graphs_for_epoch(epoch: int) -> GraphSet:
        ratio = start + (end - start) * min(epoch, epochs - 1) / max(epochs - 1, 1)
        chosen = hardest_first[: int(round(ratio * len(attacks)))]
        return train.subset(np.sort(np.concatenate([attacks, chosen])))

    return train_gat(run, graphs_for_epoch)
