"""What every stage shares: its context, batches, predictions, metrics and outputs.

A stage's code runs on every rank of a data-parallel group (kdgat.distributed)
as it does in one process: `training_batches` gives this rank its share of
each batch, `fit` trains the model wrapped in DistributedDataParallel,
`predict` shares the graphs out and gathers the scores, `average` means a
number over every rank's examples. Rank 0 alone writes (`execute`,
`save_model`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from kdgat import artifacts, distributed
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

    def batches(self, graphs: GraphSet):
        """Every graph of `graphs`, in order, in batches on the stage's device (on every rank)."""
        return self._on_device(graphs.as_dataset().loader(self.cfg.train.batch_size))

    def training_batches(self, graphs: GraphSet, epoch: int):
        """This rank's share of each shuffled batch of `graphs` (all of it in one process).

        Shuffled by a seed of the run and the epoch, so a resumed run sees the same order as an
        uninterrupted one, and N ranks together see the batches one process would (kdgat.distributed).
        """
        seed = self.cfg.seed * 100_003 + epoch
        view = graphs.as_dataset()
        if not distributed.active():
            return self._on_device(view.loader(self.cfg.train.batch_size, shuffle=True, seed=seed))
        return self._on_device(view.loader(distributed.rank_batch(self.cfg.train.batch_size), shuffle=True,
                                           seed=seed, ranks=(distributed.rank(), distributed.size())))

    def share(self, graphs: GraphSet) -> GraphSet:
        """This rank's block of `graphs` for evaluation (all of them in one process)."""
        part = distributed.share(len(graphs))
        return graphs if part == slice(0, len(graphs)) else graphs.subset(np.arange(part.start, part.stop))

    @staticmethod
    def average(total: float, count: float) -> float:
        """total / count, both summed over the ranks: a mean over every rank's examples."""
        return distributed.average(total, count)

    def _on_device(self, loader):
        return (batch.to(self.device) for batch in loader) if self.device.type != "cpu" else loader

    def fit(self, model: torch.nn.Module, lr: float, train_epoch: Callable, validate: Callable, monitor: str,
            mode: str, step: str | None = None) -> dict[str, Any]:
        """Train `model` (kdgat.training.fit). `train_epoch(epoch, bar, optimizer, net)` steps `net`, the model
        as DistributedDataParallel when there are ranks; `step` names the model's method that `net(...)` calls
        (a loss, such as the VGAE's), instead of its forward."""
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        net = distributed.wrap(model if step is None else Step(model, step))
        return fit(Fit(model=model, optimizer=optimizer,
                       train_epoch=lambda e, bar: train_epoch(e, bar, optimizer, net),
                       validate=validate, monitor=monitor, mode=mode, epochs=self.epochs,
                       patience=self.cfg.train.patience, checkpoint=self.art.checkpoint, desc=self.name,
                       progress=show_progress(self.cfg.progress), slow_epoch_s=float(self.cfg.train.slow_epoch_s),
                       lr_schedule=str(self.cfg.train.lr_schedule), on_epoch=self.on_epoch))


class Step(torch.nn.Module):
    """A model whose forward is one of its methods: DistributedDataParallel synchronises gradients of what
    goes through forward, and the VGAE trains on its `loss`."""

    def __init__(self, model: torch.nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args: Any) -> Any:
        return getattr(self.model, self.method)(*args)


def predict(run: StageRun, fn: Callable[[Any], torch.Tensor], graphs: GraphSet) -> np.ndarray:
    """One number per graph, from `fn(batch)`, in eval mode and without gradients; with several ranks each
    scores its block and every rank gets all the scores."""
    out = []
    with torch.no_grad():
        for batch in run.batches(run.share(graphs)):
            out.append(fn(batch).detach().float().cpu().numpy())
    return distributed.gather(np.concatenate(out) if out else np.zeros(0, np.float32))


def splits(run: StageRun) -> dict[str, GraphSet]:
    """Validation and every test scenario, the splits each stage reports on."""
    return {"val": run.data.val, **{f"test_{k}": v for k, v in run.data.tests.items()}}


def evaluate(labels_scores: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> dict[str, Any]:
    from kdgat.metrics import binary_metrics

    return {split: binary_metrics(y, s, threshold=threshold) for split, (y, s) in labels_scores.items()}


def save_model(path, model: torch.nn.Module, **extra: Any) -> None:
    """The model's sizes and weights (rank 0 alone writes)."""
    if distributed.is_main():
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
    finished logs nothing. With several ranks, rank 0 holds the lock, decides
    whether the stage trains, and alone writes and tracks; every rank trains.
    """
    import contextlib
    import resource

    from omegaconf import OmegaConf

    from kdgat.atomic import locked, write_json_atomic, write_text_atomic
    from kdgat.tracking.session import StageTracker, start_stage

    inputs = artifacts.stage_inputs(cfg, name)
    art = artifacts.stage_artifacts(cfg, name)
    artifacts.require_finished(name, inputs)
    main = distributed.is_main()
    if main:
        art.dir.mkdir(parents=True, exist_ok=True)
    with locked(art.dir, timeout=7 * 24 * 3600) if main else contextlib.nullcontext():
        state = distributed.broadcast("done" if art.done() else "damaged" if art.marker.is_file() else "train")
        if state == "done":
            log.info(f"stage {name} is already trained ({art.dir}); skipping it")
            return json.loads(art.metrics.read_text())
        if state == "damaged" and main:  # finished once, but its files no longer match what it wrote
            log.warning(f"stage {name} was trained, but {art.damage()}: training it again")
            art.marker.unlink()
        device = configure(cfg.train.device, cfg.seed)
        tracker = start_stage(cfg, name, art, inputs) if main else StageTracker(cfg, name, art)
        run = StageRun(cfg=cfg, name=name, node=cfg.pipeline.stages[name], art=art, inputs=inputs, data=data,
                       device=device, on_epoch=tracker.on_epoch)
        ranks = f", {distributed.size()} processes" if distributed.active() else ""
        log.info(f"stage {name} ({run.node.preset}) on {device}, {torch.get_num_threads()} threads{ranks}, "
                 f"writing {art.dir}")
        t0 = time.perf_counter()
        try:
            _hold_memory(int(cfg.train.get("test_hold_mem_mb") or 0))
            metrics = train(run)
        except Exception:
            tracker.finish(ok=False)
            raise
        if not main:
            return metrics
        # The process's peak resident memory so far (KiB on Linux): a stage's own when it runs alone, as a
        # SLURM stage job does; at least the stage's when one process runs several stages one after another.
        # With several ranks it is rank 0's.
        peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        metrics = {"stage": name, "preset": run.node.preset, "dataset": cfg.dataset.name,
                   "fingerprint": art.fingerprint, "seconds": round(time.perf_counter() - t0, 2),
                   "peak_rss_mib": peak_rss_mib, "processes": distributed.size(), **metrics}
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

