"""Stage `autoencoder`: the VGAE, trained on normal windows only.

It decodes over the CAN IDs of normal training traffic (kdgat.models.profile).
After training, its anomaly score (the worst node's standardised
reconstruction errors) is put on scale on the normal training windows,
thresholded at Youden's J on the validation split, and calibrated there to
[0, 1] for the fusion stage; all of it is saved with the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kdgat import artifacts
from kdgat.calibration import calibrate
from kdgat.metrics import youden_threshold
from kdgat.models import count_parameters
from kdgat.models.profile import NormalProfile, normal_nodes
from kdgat.models.vgae import GraphVGAE
from kdgat.stages.common import StageRun, evaluate, in_features, predict, save_model, splits


def autoencoder(run: StageRun) -> dict[str, Any]:
    sizes = artifacts.model_sizes(run.cfg, run.name)
    normal_train = run.data.train.subset(np.flatnonzero(run.data.train.y == 0))
    normal_val = run.data.val.subset(np.flatnonzero(run.data.val.y == 0))
    node_id, x = normal_nodes(normal_train)
    classes = NormalProfile.classes_for(node_id, run.num_ids)
    model = GraphVGAE(num_ids=run.num_ids, classes=classes, **in_features(), **sizes)
    model.profile.fit(node_id, x)
    model = model.to(run.device)

    def train_epoch(epoch, bar, optimizer, net):
        total, n = 0.0, 0
        for batch in bar(run.training_batches(normal_train, epoch)):
            optimizer.zero_grad()
            loss, _ = net(batch)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * batch.num_graphs, n + batch.num_graphs
        return {"train_loss": run.average(total, n)}

    def validate():
        part = run.share(normal_val)
        losses = [model.loss(b)[0].item() * b.num_graphs for b in run.batches(part)]
        return {"val_loss": run.average(sum(losses), len(part))}

    training = run.fit(model, run.node.lr, train_epoch, validate, monitor="val_loss", mode="min", step="loss")
    model.eval()
    model.fit_score(run.batches(normal_train))  # the score's scales, from normal training windows
    scored = {split: (g.y, predict(run, model.anomaly_score, g)) for split, g in splits(run).items()}
    threshold = youden_threshold(*scored["val"])  # (labels, scores)
    labels, scores = scored["val"]
    calibration = calibrate(scores, labels)
    save_model(run.art.model, model, threshold=threshold, calibration=calibration.to_dict())
    return {"parameters": count_parameters(model), "classes": classes, "threshold": threshold,
            "splits": evaluate(scored, threshold), "training": training}


def anomaly_scores(run: StageRun, vgae_art, graphs) -> tuple[np.ndarray, Any]:
    """A trained VGAE's calibrated scores in [0, 1] (0.5 at its Youden threshold) for `graphs`."""
    from kdgat.calibration import Calibration
    from kdgat.stages.common import load_model

    model, saved = load_model(vgae_art, GraphVGAE, run.device)
    calibration = Calibration.from_dict(saved["calibration"])
    raw = predict(run, model.anomaly_score, graphs)
    return calibration(raw), raw
