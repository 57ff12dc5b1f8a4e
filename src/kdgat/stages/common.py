"""What every stage shares: its context, batches, predictions, metrics and outputs."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from kdgat import artifacts
from kdgat.artifacts import StageArtifacts
from kdgat.console import show_progress
from kdgat.data.features import EDGE_FEATURES, NODE_FEATURES
from kdgat.data.graphset import GraphSet
from kdgat.training import Fit, configure, fit, load_tensors, save_tensors

log = logging.getLogger(__name__)


@dataclass
class StageRun:
    """One stage being trained: its config node, its data, its inputs and outputs."""

    cfg: Any
    name: str
    node: Any
    art: StageArtifacts
    inputs: dict[str, StageArtifacts]
    data: Any  # kdgat.data.dataset.Prepared
    device: torch.device
    on_epoch: Callable[[int, dict[str, float]], None] | None = None  # kdgat.tracking's, when it tracks

    @property
    def epochs(self) -> int:
        cap = self.cfg.train.max_epochs
        return int(self.node.epochs if cap is None else min(self.node.epochs, cap))

    @property
    def num_ids(self) -> int:
        return len(self.data.vocab)

    def batches(self, graphs: GraphSet, shuffle: bool = False, epoch: int = 0):
        """Batches on the stage's device; shuffled by a seed of the run and the epoch, so a resumed run
        sees the same order as an uninterrupted one."""
        loader = graphs.as_dataset().loader(self.cfg.train.batch_size, shuffle=shuffle,
                                            seed=self.cfg.seed * 100_003 + epoch)
        return (batch.to(self.device) for batch in loader) if self.device.type != "cpu" else loader

    def fit(self, model: torch.nn.Module, lr: float, train_epoch: Callable, validate: Callable, monitor: str,
            mode: str) -> dict[str, Any]:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        return fit(Fit(model=model, optimizer=optimizer, train_epoch=lambda e, bar: train_epoch(e, bar, optimizer),
                       validate=validate, monitor=monitor, mode=mode, epochs=self.epochs,
                       patience=self.cfg.train.patience, checkpoint=self.art.checkpoint, desc=self.name,
                       progress=show_progress(self.cfg.progress), slow_epoch_s=float(self.cfg.train.slow_epoch_s),
                       lr_schedule=str(self.cfg.train.lr_schedule), on_epoch=self.on_epoch))


def predict(run: StageRun, fn: Callable[[Any], torch.Tensor], graphs: GraphSet) -> np.ndarray:
    """One number per graph, from `fn(batch)`, in eval mode and without gradients."""
    out = []
    with torch.no_grad():
        for batch in run.batches(graphs):
            out.append(fn(batch).detach().float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def splits(run: StageRun) -> dict[str, GraphSet]:
    """Validation and every test scenario, the splits each stage reports on."""
    return {"val": run.data.val, **{f"test_{k}": v for k, v in run.data.tests.items()}}


def evaluate(labels_scores: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> dict[str, Any]:
    from kdgat.metrics import binary_metrics

    return {split: binary_metrics(y, s, threshold=threshold) for split, (y, s) in labels_scores.items()}


def save_model(path, model: torch.nn.Module, **extra: Any) -> None:
    save_tensors(path, {"config": dict(model.config), "state_dict": model.state_dict(), **extra})


def load_model(art: StageArtifacts, cls: type, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """A trained model of an earlier stage, in eval mode, with the extras saved beside it."""
    saved = load_tensors(art.model, device)
    model = cls(**saved["config"]).to(device)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved


def in_features() -> dict[str, int]:
    return {"in_features": len(NODE_FEATURES), "edge_dim": len(EDGE_FEATURES)}


def execute(cfg: Any, name: str, data: Any, train: Callable[[StageRun], dict[str, Any]]) -> dict[str, Any]:
    """Run one stage under the contract: inputs checked first, marker written last.

    A lock on the stage's directory keeps two runs of the same stage (two
    identical submissions) from training it twice: the second waits, then
    finds it finished. A stage that trains is tracked (kdgat.tracking): its run
    is opened before training and completed before the marker; a stage found
    finished logs nothing.
    """
    import resource

    from omegaconf import OmegaConf

    from kdgat.atomic import locked, write_json_atomic, write_text_atomic
    from kdgat.tracking.session import start_stage

    inputs = artifacts.stage_inputs(cfg, name)
    art = artifacts.stage_artifacts(cfg, name)
    artifacts.require_finished(name, inputs)
    art.dir.mkdir(parents=True, exist_ok=True)
    with locked(art.dir, timeout=7 * 24 * 3600):
        if art.done():
            log.info(f"stage {name} is already trained ({art.dir}); skipping it")
            return json.loads(art.metrics.read_text())
        if art.marker.is_file():  # finished once, but its files no longer match what it wrote
            log.warning(f"stage {name} was trained, but {art.damage()}: training it again")
            art.marker.unlink()
        device = configure(cfg.train.device, cfg.seed)
        tracker = start_stage(cfg, name, art, inputs)  # its MLflow run, when tracking is on
        run = StageRun(cfg=cfg, name=name, node=cfg.pipeline.stages[name], art=art, inputs=inputs, data=data,
                       device=device, on_epoch=tracker.on_epoch)
        log.info(f"stage {name} ({run.node.preset}) on {device}, {torch.get_num_threads()} threads, writing {art.dir}")
        t0 = time.perf_counter()
        try:
            _hold_memory(int(cfg.train.get("test_hold_mem_mb") or 0))
            metrics = train(run)
        except Exception:
            tracker.finish(ok=False)
            raise
        # The process's peak resident memory so far (KiB on Linux): a stage's own when it runs alone, as a
        # SLURM stage job does; at least the stage's when one process runs several stages one after another.
        peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        metrics = {"stage": name, "preset": run.node.preset, "dataset": cfg.dataset.name,
                   "fingerprint": art.fingerprint, "seconds": round(time.perf_counter() - t0, 2),
                   "peak_rss_mib": peak_rss_mib, **metrics}
        write_text_atomic(art.config, OmegaConf.to_yaml(cfg, resolve=True))
        write_json_atomic(art.metrics, metrics)
        _figures(run, metrics)
        tracker.finish(ok=True)  # before the marker, which stays the last file a stage writes
        artifacts.finish(cfg, art, inputs, {"seconds": metrics["seconds"]})
    log.info(f"stage {name} trained: {summary_line(metrics)}")
    return metrics


def _hold_memory(megabytes: int, seconds: float = 15.0) -> None:
    """For tests of the out-of-memory retry: hold `megabytes` of touched memory long enough for the cluster's
    memory accounting (a poll every few seconds) to see it."""
    if megabytes <= 0:
        return
    ballast = bytearray(megabytes << 20)
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))  # every page resident
    log.info(f"holding {megabytes} MB for {seconds:.0f} s (train.test_hold_mem_mb)")
    time.sleep(seconds)
    del ballast


def summary_line(metrics: dict[str, Any]) -> str:
    parts = [f"{split} F1 {m['f1']:.4f}" for split, m in metrics.get("splits", {}).items()]
    return ", ".join(parts) + f" ({metrics['seconds']:.0f} s)"


def _figures(run: StageRun, metrics: dict[str, Any]) -> None:
    from kdgat import plots

    history = metrics.get("training", {}).get("history")
    if history:
        plots.training_curves({k: v for k, v in history.items() if k not in ("seconds", "lr")},
                              run.art.dir / "training_curves.png", f"{run.name} on {run.cfg.dataset.name}")
    for split, m in metrics.get("splits", {}).items():
        plots.confusion_matrix(m["confusion_matrix"], run.art.dir / f"confusion_{split}.png",
                               f"{run.name}: {split}")

