"""Stage `autoencoder`: the VGAE, trained on normal windows only.

Its anomaly score (the worst node's reconstruction error) is thresholded at
Youden's J on the validation split, and calibrated there to [0, 1] for the
fusion stage; both are saved with the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kdgat import artifacts
from kdgat.metrics import calibrate, youden_threshold
from kdgat.models import count_parameters
from kdgat.models.vgae import GraphVGAE
from kdgat.stages.common import StageRun, evaluate, in_features, predict, save_model, splits


def autoencoder(run: StageRun) -> dict[str, Any]:
    sizes = artifacts.model_sizes(run.cfg, run.name)
    model = GraphVGAE(num_ids=run.num_ids, **in_features(), **sizes).to(run.device)
    normal_train = run.data.train.subset(np.flatnonzero(run.data.train.y == 0))
    normal_val = run.data.val.subset(np.flatnonzero(run.data.val.y == 0))

    def train_epoch(epoch, bar, optimizer):
        total, n = 0.0, 0
        for batch in bar(run.batches(normal_train, shuffle=True, epoch=epoch)):
            optimizer.zero_grad()
            loss, _ = model.loss(batch)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * batch.num_graphs, n + batch.num_graphs
        return {"train_loss": total / max(n, 1)}

    def validate():
        losses = [model.loss(b)[0].item() * b.num_graphs for b in run.batches(normal_val)]
        return {"val_loss": sum(losses) / max(len(normal_val), 1)}

    training = run.fit(model, run.node.lr, train_epoch, validate, monitor="val_loss", mode="min")
    model.eval()
    scored = {split: (g.y, predict(run, model.anomaly_score, g)) for split, g in splits(run).items()}
    threshold = youden_threshold(*scored["val"])  # (labels, scores)
    labels, scores = scored["val"]
    calibration = calibrate(scores, labels)
    save_model(run.art.model, model, threshold=threshold, calibration=calibration.to_dict())
    return {"parameters": count_parameters(model), "threshold": threshold, "splits": evaluate(scored, threshold),
            "training": training}


def anomaly_scores(run: StageRun, vgae_art, graphs) -> tuple[np.ndarray, Any]:
    """A trained VGAE's calibrated scores in [0, 1] (0.5 at its Youden threshold) for `graphs`."""
    from kdgat.metrics import Calibration
    from kdgat.stages.common import load_model

    model, saved = load_model(vgae_art, GraphVGAE, run.device)
    calibration = Calibration.from_dict(saved["calibration"])
    raw = predict(run, model.anomaly_score, graphs)
    return calibration(raw), raw

