"""The epoch loop every neural stage shares: device, threads, early stopping, checkpoints.

A checkpoint is written (atomically) at the end of every epoch and holds
everything needed to carry on exactly: model, optimiser and learning-rate
scheduler state, the best state so far, the history and the RNG state. A
stage started again with the same fingerprint, such as a requeued SLURM job,
resumes after the last finished epoch instead of starting over.

With several ranks (kdgat.distributed) every rank runs this loop: each
epoch's validation row is rank 0's, so all take the same early-stopping
decision; rank 0 alone logs, shows progress and writes the checkpoint, which
every rank of a later run resumes from.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from kdgat import distributed
from kdgat.atomic import digest_path, write_bytes_atomic, write_text_atomic
from kdgat.errors import KdgatError

log = logging.getLogger(__name__)


def usable_cpus() -> int:
    """CPUs this process may use: SLURM's grant, never above the CPUs it may really run on.

    A cluster (like the local test one) may grant more CPUs than the node has;
    more threads than cores only slows training down.
    """
    allowed = len(os.sched_getaffinity(0))
    granted = os.environ.get("SLURM_CPUS_PER_TASK")
    return max(1, min(int(granted), allowed)) if granted and granted.isdigit() else allowed


def configure(device: str, seed: int) -> torch.device:
    """Seed torch, set the thread count, and pick CUDA when present (device=auto).

    A rank of a data-parallel group takes its group's device, and its share of the CPUs: the usable CPUs
    divided by the ranks that share them (more threads than cores, over all ranks, slow every rank down).
    """
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, usable_cpus() // distributed.cpu_sharers()))
    if distributed.device() is not None:
        return distributed.device()
    if device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if device == "cuda":
        raise KdgatError("train.device=cuda, but torch sees no CUDA device; use train.device=auto or cpu")
    return torch.device("cpu")


def save_tensors(path: Path, obj: Any) -> None:
    """torch.save to a file written atomically (a killed job never leaves half a model), with its sha256
    beside it in `<file>.sha256`: torch.load does not notice flipped bytes, the digest does. The digest is
    written first, so a job killed between the two leaves a file that fails its check, never one without it."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    write_text_atomic(digest_path(path), hashlib.sha256(data).hexdigest() + "\n")
    write_bytes_atomic(path, data)


def load_tensors(path: Path, device: torch.device | str = "cpu") -> Any:
    """torch.load of tensors and plain containers only (weights_only: nothing pickled runs), after checking
    the file against the sha256 written with it (a file without one, from before, is loaded as it is)."""
    digest = digest_path(path)
    data = Path(path).read_bytes()
    if digest.is_file() and digest.read_text().strip() != hashlib.sha256(data).hexdigest():
        raise KdgatError(f"{path} does not match its sha256 in {digest.name}: the file is damaged")
    return torch.load(io.BytesIO(data), map_location=device, weights_only=True)


@dataclass
class Fit:
    """How one model is trained; `train_epoch` and `validate` are the stage's own."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_epoch: Callable[[int, Callable[[Iterable], Iterable]], dict[str, float]]
    validate: Callable[[], dict[str, float]]
    monitor: str  # the key of validate()'s result that early stopping watches
    mode: str  # "max" or "min"
    epochs: int
    patience: int
    checkpoint: Path
    desc: str
    # train.lr_schedule. "cosine": the learning rate falls from its initial value towards 0 over `epochs`
    # (see `make_scheduler`); "constant": it stays.
    lr_schedule: str
    progress: bool = True
    slow_epoch_s: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)
    # Called with (epoch from 0, that epoch's row) once the epoch is checkpointed (kdgat.tracking).
    on_epoch: Callable[[int, dict[str, float]], None] | None = None


def fit(job: Fit) -> dict[str, Any]:
    """Train for up to `epochs`, stopping early; leaves the best state in the model.

    Returns a summary: epochs run, the best epoch and score, the history, and
    the epoch this call resumed from (0 for a fresh start).
    """
    from tqdm import tqdm

    main = distributed.is_main()
    scheduler = make_scheduler(job)  # before _resume: building it resets the optimiser's rate
    state = _resume(job, scheduler)
    start = state["epoch"] + 1 if state else 0
    best = state["best"] if state else None
    best_epoch = state["best_epoch"] if state else -1
    best_state = state["best_state"] if state else copy.deepcopy(job.model.state_dict())
    stale = state["stale"] if state else 0
    history: dict[str, list[float]] = state["history"] if state else {}
    if state and main:
        log.info(f"{job.desc}: resuming after epoch {start} of {job.epochs} from {job.checkpoint}")

    def batches(iterable: Iterable) -> Iterable:
        return tqdm(iterable, desc=f"{job.desc} epoch {epoch + 1}/{job.epochs}", unit="batch", leave=False,
                    disable=not (job.progress and main), file=sys.stderr)

    epoch = start - 1
    for epoch in range(start, job.epochs):
        if stale >= job.patience:
            break
        t0 = time.perf_counter()
        job.model.train()
        row = dict(job.train_epoch(epoch, batches))
        job.model.eval()
        with torch.no_grad():
            row.update(job.validate())
        row["seconds"] = time.perf_counter() - t0
        row = distributed.broadcast(row)  # rank 0's: every rank decides as it does
        row["lr"] = job.optimizer.param_groups[0]["lr"]  # this epoch's rate
        if scheduler is not None:
            scheduler.step()  # the rate of the next epoch, saved with this one
        for k, v in row.items():
            history.setdefault(k, []).append(float(v))
        score = row[job.monitor]
        # A tie goes to the later epoch (further trained, and at a lower rate under the cosine schedule),
        # but only a better score resets the patience: a plateau stops training like a decline does.
        better = best is None or (score > best if job.mode == "max" else score < best)
        if better or score == best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(job.model.state_dict())
        stale = 0 if better else stale + 1
        if main:
            log.info(f"{job.desc} epoch {epoch + 1}/{job.epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
            save_tensors(job.checkpoint, {
                "epoch": epoch, "model": job.model.state_dict(), "optimizer": job.optimizer.state_dict(),
                "best": best, "best_epoch": best_epoch, "best_state": best_state, "stale": stale,
                "history": history, "rng": torch.get_rng_state(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
            })
            if job.on_epoch is not None:
                job.on_epoch(epoch, row)
        if job.slow_epoch_s and epoch + 1 < job.epochs:
            time.sleep(job.slow_epoch_s)
    job.model.load_state_dict(best_state)
    job.history.update(history)
    return {"epochs_run": len(next(iter(history.values()), [])), "best_epoch": best_epoch + 1,
            "best_" + job.monitor: best, "resumed_from_epoch": start, "history": history}


def make_scheduler(job: Fit) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule of `job`, stepped once per epoch; None for a constant rate.

    Cosine: torch's CosineAnnealingLR over `epochs`, lr * 0.5 * (1 + cos(pi * epoch / epochs)) in epoch 0, 1, ...
    up to float rounding; its state_dict goes into the checkpoint, so a resumed run carries on the same rates.
    """
    if job.lr_schedule == "constant":
        return None
    if job.lr_schedule != "cosine":
        raise KdgatError(f"unknown train.lr_schedule {job.lr_schedule!r}; use constant or cosine")
    epochs = max(job.epochs, 1)
    return torch.optim.lr_scheduler.CosineAnnealingLR(job.optimizer, T_max=epochs)


def _resume(job: Fit, scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> dict[str, Any] | None:
    """The saved state of an interrupted run of this same stage, if a sound one exists.

    With several ranks, rank 0 decides: the others load the checkpoint only once rank 0 has found it sound.
    """
    if not distributed.active():
        return _load_checkpoint(job, scheduler)
    state = _load_checkpoint(job, scheduler) if distributed.is_main() else None
    if not distributed.broadcast(state is not None):
        return None
    return state if state is not None else _load_checkpoint(job, scheduler, strict=True)


def _load_checkpoint(job: Fit, scheduler: torch.optim.lr_scheduler.LRScheduler | None,
                     strict: bool = False) -> dict[str, Any] | None:
    """The checkpoint loaded into the model, optimiser and scheduler; a missing or unreadable one is None and
    removed (strict: raise instead, for a rank that rank 0 told to load it)."""
    if not job.checkpoint.is_file() and not strict:
        return None
    try:
        state = load_tensors(job.checkpoint)
        if scheduler is not None:  # first: a checkpoint without its state fails before anything is loaded
            scheduler.load_state_dict(state["scheduler"])
        job.model.load_state_dict(state["model"])
        job.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
    except Exception as err:  # a damaged, truncated or foreign file: start over rather than load it
        if strict:
            raise
        why = str(err) if isinstance(err, KdgatError) else type(err).__name__
        log.warning(f"{job.desc}: ignoring unreadable checkpoint {job.checkpoint} ({why}); "
                    "starting from epoch 1")
        job.checkpoint.unlink(missing_ok=True)
        digest_path(job.checkpoint).unlink(missing_ok=True)
        return None
    return state
