"""Each Hydra job as a chain: its frozen config, its stages and their requests, and what the app says of
each stage; then, across a launch, which stages to submit, skip (done), attach to (already queued) or share
(two chains of one sweep, one job). Nothing here submits anything.
"""

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.kdgat_chain_launcher._backend import Backend
from hydra_plugins.kdgat_chain_launcher._contract import SHOWN_RESOURCES, StageState, read_queued
from hydra_plugins.kdgat_chain_launcher._errors import PlanError
from hydra_plugins.kdgat_chain_launcher._plan import Stage, gpu_warnings, job_name, plan_stages, resume_actions
from hydra_plugins.kdgat_chain_launcher._resources import parse_resources

JOB_STAGE = "job"  # the one stage of an app without a pipeline node
# Left for the job to resolve: Hydra fills them in when the job starts (its output folder, its log file).
UNRESOLVED_HYDRA = ("runtime", "job_logging", "hydra_logging")


@dataclass
class Chain:
    """One Hydra job's stages, planned and validated, before anything is submitted."""

    num: int
    overrides: List[str]
    config: DictConfig
    stages: List[Stage]
    names: Dict[str, str]
    folder: Path
    pipeline: bool = True  # False: an app without a pipeline node, run as Hydra's own job
    warnings: List[str] = field(default_factory=list)
    states: Dict[str, StageState] = field(default_factory=dict)
    # What the launcher does with each stage: ("submit" | "done" | "attached" | "shared", job id).
    actions: Dict[str, Tuple[str, Optional[str]]] = field(default_factory=dict)
    job_ids: Dict[str, str] = field(default_factory=dict)
    logs: Dict[str, Tuple[str, str]] = field(default_factory=dict)  # stage -> log, script
    pickled: Optional[bytes] = None  # the config, pickled once for all its stage jobs
    stage_jobs: Dict[str, Any] = field(default_factory=dict)  # stage -> what its job runs (a StageJob)
    guard: Optional[str] = None  # the job that retries the chain's stages (out of memory, out of time)

    def show_resources(self) -> None:
        """Each stage's planned request in its frozen config's `effective_resources` (for people reading it,
        and for the jobs' own saved configs); left out of a dry run, which writes no config."""
        if not self.pipeline:
            return
        nodes = self.config.pipeline.stages
        with read_write(self.config):
            for stage in self.stages:
                if SHOWN_RESOURCES in nodes[stage.name].keys():  # (keys: `in node` would resolve it)
                    nodes[stage.name][SHOWN_RESOURCES] = stage.resources.as_request()

    def marker(self, stage: str) -> Optional[str]:
        return self.states.get(stage, StageState()).marker

    def stage_folder(self, stage: str) -> Path:
        if self.pipeline:
            return self.folder / stage
        return Path(str(self.config.hydra.sweep.dir)).absolute() / str(self.config.hydra.sweep.subdir)


def plan_chain(config: DictConfig, num: int, overrides: List[str], sweep_dir: Path, params: Dict[str, Any]) -> Chain:
    """One Hydra job's config, frozen, as a chain of stages with their requests and states."""
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.job.num = num
    HydraConfig.instance().set_config(config)
    if "pipeline" in config:
        complete = _app_function(config.pipeline.get("complete"), "pipeline.complete")
        if complete is not None:
            _ask_app(num, complete, config)
    _empty_shown_resources(config)
    try:  # frozen now: environment, paths and times as at submit, whenever a stage starts
        _freeze(config)
    except Exception as err:
        raise PlanError(f"job {num} ({' '.join(overrides)}): cannot resolve its config: {err}") from err
    lookup = lambda key: OmegaConf.select(config, key, default=None)  # noqa: E731
    if "pipeline" not in config:
        stage = Stage(name=JOB_STAGE, needs=(), resources=parse_resources(
            params.get("resources") or {}, "hydra.launcher.resources"))
        return Chain(num=num, overrides=overrides, config=config, stages=[stage], pipeline=False,
                     names={JOB_STAGE: job_name(params.get("job_name", "{stage}"), JOB_STAGE, lookup)},
                     folder=sweep_dir / str(num), states={JOB_STAGE: StageState()})
    stages = plan_stages(config.pipeline, config.get("resources"))
    state_of = _app_function(config.pipeline.get("stage_state"), "pipeline.stage_state")
    return Chain(num=num, overrides=overrides, config=config, stages=stages,
                 names={s.name: job_name(params.get("job_name", "{stage}"), s.name, lookup) for s in stages},
                 folder=sweep_dir / str(num), warnings=gpu_warnings(stages),
                 states={s.name: _ask_app(num, state_of, config, s.name) if state_of else StageState()
                         for s in stages})


def resume(chains: List[Chain], backend: Backend, rerun: Any) -> None:
    """Decide, per stage, submit / skip (done) / attach (already queued); a marker two chains share
    is submitted once and the second chain waits on it."""
    rerun = {rerun} if isinstance(rerun, str) else set(rerun or [])

    def queued(marker: str) -> Optional[str]:
        record = read_queued(marker)
        return record.job_id if record is not None and backend.alive(record) else None

    stale = {chain.marker(n) for chain in chains for n, state in chain.states.items() if state.stale}
    first_chain: Dict[str, int] = {}
    for chain in chains:
        chain.actions = resume_actions(chain.stages, {s.name: chain.marker(s.name) for s in chain.stages},
                                       lambda m: m not in stale and Path(m).exists(), queued, rerun)
        for name, (action, job) in chain.actions.items():
            marker = chain.marker(name)
            if action == "attached":
                chain.job_ids[name] = job
            elif action == "submit" and marker:
                if marker in first_chain:
                    chain.actions[name] = ("shared", None)
                else:
                    first_chain[marker] = chain.num


def _empty_shown_resources(config: DictConfig) -> None:
    """Empty each stage node's `effective_resources` before freezing: its resolver would refuse a bad value in
    OmegaConf's words, where the planner refuses it in its own (Chain.show_resources fills it in)."""
    stages = OmegaConf.select(config, "pipeline.stages", default=None)
    if not OmegaConf.is_config(stages):
        return
    with read_write(stages):
        for name in stages:
            node = stages[name]
            if OmegaConf.is_config(node) and SHOWN_RESOURCES in node.keys():
                node[SHOWN_RESOURCES] = None


def _freeze(config: DictConfig) -> None:
    """Resolve the config as at submit (environment, paths, times), except what Hydra fills in when the job
    starts: its runtime folder and the log file named after it."""
    with read_write(config), read_write(config.hydra):
        for key in config:
            if key != "hydra" and OmegaConf.is_config(config[key]):
                OmegaConf.resolve(config[key])
            elif key != "hydra":
                config[key] = config[key]  # a plain value resolves on read
        for key in config.hydra:
            if key not in UNRESOLVED_HYDRA and OmegaConf.is_config(config.hydra[key]):
                OmegaConf.resolve(config.hydra[key])
            elif key not in UNRESOLVED_HYDRA:
                config.hydra[key] = config.hydra[key]


def _app_function(path: Optional[str], key: str) -> Any:
    """The app's `module.function` named by a key of its pipeline node (None when it names none)."""
    if not path:
        return None
    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise PlanError(f"{key}={path!r} names no function ({err})") from None


def _ask_app(num: int, function: Any, *args: Any) -> Any:
    """An app function's answer; a ValueError it raises (bad input) refuses the launch in one line."""
    try:
        return function(*args)
    except ValueError as err:
        raise PlanError(f"job {num}: {err}") from None


def note_shared(chain: Chain, by_marker: Dict[str, str]) -> None:
    """A stage this chain shares with an earlier chain of the launch waits on that chain's job."""
    for name, (action, _) in chain.actions.items():
        if action == "shared" and name not in chain.job_ids and chain.marker(name) in by_marker:
            chain.job_ids[name] = by_marker[chain.marker(name)]
