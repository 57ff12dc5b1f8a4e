"""`train.processes=N`: a data-parallel stage trained here by N spawned processes, one rank each.

Each process is a fresh Python (the spawn start method: it inherits no torch
threads or open files, and is handed only picklable data, never a lambda). It
joins a group on this host through torch.distributed's env:// variables and
runs the stage as a task of a multi-GPU SLURM stage job does: the caller's
`run` (kdgat.task.run_stages) with `stage` set (kdgat.distributed has the
rules the ranks follow). Rank 0's log records come back through a queue to this
process's handlers (Hydra's console and job log); the other ranks log only
errors. This process waits for all of them; a user error (KdgatError) in a
rank is raised here with its one line.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from kdgat import distributed
from kdgat.errors import KdgatError

log = logging.getLogger(__name__)


def wanted(cfg: Any, name: str) -> int:
    """How many processes train stage `name` here: `train.processes` for a data-parallel stage of a process
    that is not already one rank of a group, else 1."""
    from kdgat.stages.registry import kind

    n = cfg.train.get("processes", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise KdgatError(f"train.processes={n!r} must be a whole number >= 1")
    if n == 1 or distributed.requested() > 1 or not kind(cfg.pipeline.stages[name].preset).data_parallel:
        return 1
    return n


@dataclass
class _Job:
    """What every spawned rank is handed (pickled once per rank)."""

    config: dict  # the job config, resolved here: the ranks need none of this process's resolvers
    hydra: dict | None  # what kdgat reads of Hydra's config, so that tracking tags and paths read the same
    port: int
    level: int
    run: Callable[[Any], Any]  # what each rank runs with the config (kdgat.task.run_stages)


def run_spawned(cfg: Any, name: str, n: int, run: Callable[[Any], Any]) -> dict[str, Any]:
    """Train stage `name` with `n` spawned ranks, each calling `run` (a module-level function: it is pickled
    by name) with the config; the stage's metrics (rank 0 wrote them)."""
    import torch.multiprocessing as mp
    from omegaconf import OmegaConf

    from kdgat import artifacts

    config = OmegaConf.to_container(cfg, resolve=True)
    config["stage"] = name
    job = _Job(config=config, hydra=_hydra_config(), port=distributed.free_port(),
               level=logging.getLogger().getEffectiveLevel(), run=run)
    context = mp.get_context("spawn")
    records, errors = context.Queue(), context.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *logging.getLogger().handlers, respect_handler_level=True)
    listener.start()
    log.info(f"stage {name}: {n} processes (train.processes={n})")
    try:
        mp.spawn(_rank_main, args=(n, job, records, errors), nprocs=n, join=True)
    except (mp.ProcessRaisedException, mp.ProcessExitedException):
        if not errors.empty():
            raise KdgatError(errors.get()) from None
        raise
    finally:
        listener.stop()
    return json.loads(artifacts.stage_artifacts(cfg, name).metrics.read_text())


def _hydra_config() -> dict | None:
    """What kdgat reads of Hydra's config in a stage (paths typed by the user, tracking's tags), resolved here;
    None outside a Hydra job. (Hydra's whole config does not pickle: it hangs on the job config's
    dynamically built stage classes.)"""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return {"hydra": {"mode": str(hc.mode), "runtime": {"cwd": str(hc.runtime.cwd),
                                                        "output_dir": str(hc.runtime.output_dir)},
                      "sweep": {"dir": str(hc.sweep.dir)}, "overrides": {"task": list(hc.overrides.task)},
                      "job": {"name": str(hc.job.name)}}}


def _rank_main(rank: int, n: int, job: _Job, records: Any, errors: Any) -> None:
    """One spawned rank: its env:// variables, its logging, then the stage."""
    from omegaconf import OmegaConf

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(job.port), RANK=str(rank), WORLD_SIZE=str(n),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(n))
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(job.level if rank == 0 else logging.ERROR)
    if job.hydra is not None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().cfg = OmegaConf.create(job.hydra)
    try:
        job.run(OmegaConf.create(job.config))
    except KdgatError as err:
        errors.put(str(err))
        sys.exit(1)
