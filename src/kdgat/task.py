"""The Hydra task: run one stage of the composed config, or all of them in order.

The launcher's stage jobs set `stage=<name>`; without it every stage of the
pipeline runs here, one after another, each skipped when already trained.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from hydra_plugins.kdgat_chain_launcher import (
    PlanError,
    Stage,
    plan_stages,
    replace_symlink,
)
from kdgat.console import show_progress
from kdgat.errors import KdgatError

log = logging.getLogger(__name__)
DEVICES = ("auto", "cuda", "cpu")


def selected_stages(cfg: Any) -> list[Stage]:
    """The stages this task runs, validated, in dependency order."""
    stages = plan_stages(cfg.pipeline, cfg.get("resources"))
    if cfg.stage is None:
        return stages
    names = [s.name for s in stages]
    if cfg.stage not in names:
        raise KdgatError(f"stage={cfg.stage!r} is not a stage of pipeline {cfg.pipeline.name}; its stages are {', '.join(names)}")
    return [s for s in stages if s.name == cfg.stage]


def run(cfg: Any) -> dict[str, dict]:
    """Entry point for train.py: a user error becomes one line and exit status 1."""
    try:
        return run_stages(cfg)
    except (KdgatError, PlanError) as err:
        print(f"kdgat: error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)


def run_stages(cfg: Any) -> dict[str, dict]:
    """Every selected stage, in order (each skipped when already trained); their metrics by name.

    In a process that is one rank of a data-parallel group (a task of a multi-GPU stage job, or a process
    `train.processes` spawned), the group is joined first and rank 0 decides what is finished.
    """
    from kdgat import distributed
    from kdgat.tracking.session import begin_pipeline

    complete_config(cfg)
    begin_pipeline()
    with distributed.joined(str(cfg.train.device)):
        return _run_stages(cfg)


def complete_config(cfg: Any) -> None:
    from kdgat.config import complete

    complete(cfg)
    if cfg.train.device not in DEVICES:
        raise KdgatError(f"train.device={cfg.train.device!r}; use one of {', '.join(DEVICES)}")


def _run_stages(cfg: Any) -> dict[str, dict]:
    from kdgat import artifacts, distributed, processes
    from kdgat.data.locate import ensure_dataset
    from kdgat.seeding import seed_everything

    stages = selected_stages(cfg)
    finished = distributed.broadcast(_finished(cfg, stages))
    if finished is not None:  # nothing to train: no need to read the data
        return finished
    if (cfg.stage is not None and os.environ.get("SUBMITIT_FOLDER") and os.environ.get("SLURM_JOB_ID")
            and distributed.is_main()):
        import submitit  # present in every job the launcher submits

        replace_symlink(artifacts.stage_log_link(cfg, cfg.stage), submitit.JobEnvironment().paths.stdout)
    seed_everything(cfg.seed)
    root = ensure_dataset(cfg.dataset, artifacts.dataset_dir(cfg), progress=show_progress(cfg.progress))
    for stage in stages:  # a missing input trained elsewhere (the student's teacher) stops us before any work
        artifacts.stage_inputs(cfg, stage.name)
    data = prepare_data(cfg, root)
    from kdgat.stages import run_stage

    metrics = {}
    for stage in stages:
        n = processes.wanted(cfg, stage.name)
        if n > 1 and not artifacts.stage_artifacts(cfg, stage.name).done():
            metrics[stage.name] = processes.run_spawned(cfg, stage.name, n, run_stages)
        else:
            metrics[stage.name] = run_stage(cfg, stage.name, data)
    return metrics


def prepare_data(cfg: Any, root: Any) -> Any:
    from kdgat import artifacts
    from kdgat.data.dataset import prepare

    p = cfg.preprocess
    return prepare(root, artifacts.cache_dir(cfg), window=p.window, stride=p.stride, val_fraction=p.val_fraction,
                   seed=p.split_seed, progress=show_progress(cfg.progress))


def _finished(cfg: Any, stages: list[Stage]) -> dict[str, dict] | None:
    """Each stage's metrics when every one is already trained (and intact); None when one needs training."""
    import json

    from kdgat import artifacts

    metrics = {}
    for stage in stages:
        try:
            art = artifacts.stage_artifacts(cfg, stage.name)
        except KdgatError:
            return None
        if not art.done():
            return None
        metrics[stage.name] = json.loads(art.metrics.read_text())
    for stage in stages:
        log.info(f"stage {stage.name} is already trained ({artifacts.stage_artifacts(cfg, stage.name).dir}); "
                 "skipping it")
    return metrics
