"""The kdgat_chain launcher: each Hydra job becomes a chain of stage jobs, chained by dependencies.

Planning is the same wherever the jobs go: every chain is planned and checked
before the first job is submitted; a stage already trained is skipped, one
already queued is attached to, one two chains share is submitted once; then a
backend (SLURM, this machine, or a dry run) checks, submits and runs them.
hydra-submitit-launcher is the model for the Hydra side, but not the base
class: it blocks until every job has finished, while a login node must be
free a second after submitting a 30-hour chain.

submitit is imported only inside the functions that submit; torch never.
"""

import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.kdgat_chain_launcher._arrays import StagePlan, Unit, plan_units
from hydra_plugins.kdgat_chain_launcher._backend import Backend, Submission, Task, make_backend
from hydra_plugins.kdgat_chain_launcher._errors import LaunchError, PlanError, report
from hydra_plugins.kdgat_chain_launcher._contract import (
    ChainRecord,
    Manifest,
    StageRecord,
    StageState,
    write_manifest,
)
from hydra_plugins.kdgat_chain_launcher._files import file_lock, write_text_atomic
from hydra_plugins.kdgat_chain_launcher._job import StageJob
from hydra_plugins.kdgat_chain_launcher._plan import (
    Stage,
    gpu_warnings,
    job_name,
    merge_resources,
    parse_resources,
    plan_stages,
    resume_actions,
)
from hydra_plugins.kdgat_chain_launcher._slurm import request_key
from hydra_plugins.kdgat_chain_launcher._table import format_table

PREFIX = "kdgat_chain"
QUEUED = ".queued"  # <marker>.queued: the job that will write the marker
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

    def marker(self, stage: str) -> Optional[str]:
        return self.states.get(stage, StageState()).marker

    def stage_folder(self, stage: str) -> Path:
        if self.pipeline:
            return self.folder / stage
        return Path(str(self.config.hydra.sweep.dir)).absolute() / str(self.config.hydra.sweep.subdir)


class KdgatChainLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                       for k, v in params.items()}
        self.config: Optional[DictConfig] = None
        self.hydra_context: Any = None
        self.task_function: Any = None
        self._shared: Optional[bytes] = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        # Hydra's sweeper composes every job's config to validate the batch, then we compose each again
        # to plan it; composing is most of a sweep's submit time, so the second asks the first's result.
        loader = hydra_context.config_loader
        compose, composed = loader.load_sweep_config, {}

        def load_sweep_config(master_config: DictConfig, sweep_overrides: List[str]) -> DictConfig:
            key = (id(master_config), tuple(sweep_overrides))
            if key not in composed:
                composed[key] = compose(master_config, sweep_overrides)
            return composed[key]

        loader.load_sweep_config = load_sweep_config

    # ------------------------------------------------------------------ launching

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        try:
            return self._launch(job_overrides, initial_job_idx)
        except LaunchError as err:
            report(err)
            raise

    def _launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        try:
            backend = make_backend(self.params, sweep_dir)
            chains = [self._plan(initial_job_idx + i, list(o), sweep_dir) for i, o in enumerate(job_overrides)]
        except PlanError as err:
            raise LaunchError(str(err)) from None
        for chain in chains:
            for warning in chain.warnings:
                print(f"{PREFIX}: warning: job {chain.num}: {warning}", file=sys.stderr)
        with _submit_lock(enabled=backend.writes):
            self._resume(chains, backend)
            for chain in chains:
                for name, (action, _) in chain.actions.items():
                    if action == "submit" and chain.states[name].missing:
                        raise LaunchError(f"job {chain.num}: stage {name} cannot run: {chain.states[name].missing}")
            units = self._units(chains, backend)
            submissions = [self._submission(i, unit, chains, sweep_dir) for i, unit in enumerate(units)]
            problems = backend.check(submissions)
            if problems:
                raise LaunchError("; ".join(problems) + "; nothing submitted")
            self._submit(chains, units, submissions, backend, sweep_dir)
            self._report(chains, backend, sweep_dir, len(units))
        results = backend.finish()
        if results:
            self._raise_if_failed(chains, backend)
        return [self._job_return(chain, results) for chain in chains]

    def _plan(self, num: int, overrides: List[str], sweep_dir: Path) -> Chain:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.job.num = num
        HydraConfig.instance().set_config(config)
        try:  # frozen now: environment, paths and times as at submit, whenever a stage starts
            _freeze(config)
        except Exception as err:
            raise PlanError(f"job {num} ({' '.join(overrides)}): cannot resolve its config: {err}") from err
        lookup = lambda key: OmegaConf.select(config, key, default=None)  # noqa: E731
        if "pipeline" not in config:
            stage = Stage(name=JOB_STAGE, needs=(), resources=parse_resources(
                merge_resources([self.params.get("resources")]), "hydra.launcher.resources"))
            return Chain(num=num, overrides=overrides, config=config, stages=[stage], pipeline=False,
                         names={JOB_STAGE: job_name(self.params.get("job_name", "{stage}"), JOB_STAGE, lookup)},
                         folder=sweep_dir / str(num), states={JOB_STAGE: StageState()})
        pipeline = OmegaConf.to_container(config.pipeline)
        resources = config.get("resources")
        stages = plan_stages(pipeline, OmegaConf.to_container(resources) if OmegaConf.is_config(resources) else None)
        state_of = _stage_state_function(pipeline.get("stage_state"))
        return Chain(num=num, overrides=overrides, config=config, stages=stages,
                     names={s.name: job_name(self.params.get("job_name", "{stage}"), s.name, lookup) for s in stages},
                     folder=sweep_dir / str(num), warnings=gpu_warnings(stages),
                     states={s.name: state_of(config, s.name) if state_of else StageState() for s in stages})

    def _resume(self, chains: List[Chain], backend: Backend) -> None:
        """Decide, per stage, submit / skip (done) / attach (already queued); a marker two chains share
        is submitted once and the second chain waits on it."""
        rerun = self.params.get("rerun") or []
        rerun = {rerun} if isinstance(rerun, str) else set(rerun)

        def queued(marker: str) -> Optional[str]:
            try:
                record = json.loads(Path(marker + QUEUED).read_text())
            except (OSError, ValueError):
                return None
            return record.get("job_id") if backend.alive(record) else None

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

    def _units(self, chains: List[Chain], backend: Backend) -> List[Unit]:
        """What to submit, as job arrays where chains line up (hydra.launcher.array) or as single jobs."""
        plans, arrayable = [], []
        for chain in chains:
            submit = {s.name for s in chain.stages if chain.actions[s.name][0] == "submit"}
            plans.append([StagePlan(name=s.name, needs=tuple(n for n in s.needs if n in submit),
                                    params=request_key(s.resources, self.params))
                          for s in chain.stages if s.name in submit])
            arrayable.append(all(chain.actions[s.name][0] in ("submit", "done") for s in chain.stages))
        enabled = bool(self.params.get("array", True)) and len(chains) > 1 and backend.cluster == "slurm"
        size = backend.max_array_size() if enabled else 1
        return plan_units(plans, arrayable, enabled, size)

    def _submission(self, index: int, unit: Unit, chains: List[Chain], sweep_dir: Path) -> Submission:
        """A unit's jobs, still without what they run and wait on (filled in when it is submitted)."""
        members = [chains[c] for c in unit.chains]
        stage = next(s for s in members[0].stages if s.name == unit.stage)
        folder = (sweep_dir / ".arrays" / f"{index}_{stage.name}" if unit.array
                  else members[0].stage_folder(stage.name) / ".submitit")
        tasks = [Task(chain=chain.num, job=None, name=chain.names[stage.name], after=[],
                      comments=self._comments(chain, stage)) for chain in members]
        return Submission(stage=stage, tasks=tasks, array=unit.array, folder=folder)

    def _submit(self, chains: List[Chain], units: List[Unit], submissions: List[Submission], backend: Backend,
                sweep_dir: Path) -> None:
        """Each submission in order, waiting on the jobs it needs; all or nothing: a refused sbatch cancels
        what this launch had queued."""
        if backend.writes:
            if self.params.get("snapshot"):
                backend.snapshot = _snapshot(sweep_dir)
            for chain in chains:
                _write_config(chain)
        by_marker: Dict[str, str] = {}  # marker -> the job of this launch that writes it
        submitted: List[str] = []
        for unit, sub in zip(units, submissions):
            members = [chains[c] for c in unit.chains]
            for chain, task in zip(members, sub.tasks):
                _note_shared(chain, by_marker)
                task.job = self._stage_job(chain, sub.stage)
                task.after = [chain.job_ids[n] for n in sub.stage.needs if chain.actions[n][0] != "done"]
                marker = chain.marker(sub.stage.name)
                if backend.writes and marker and Path(marker).exists():  # forced or stale: set the old one aside
                    os.replace(marker, f"{marker}.rerun-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                queued = backend.submit(sub)
            except Exception as err:
                who = ", ".join(f"job {chain.num}" for chain in members)
                raise LaunchError(f"{who}: sbatch refused stage {sub.stage.name}: {err}; "
                                  f"{_cancel(backend, submitted)}") from None
            submitted += [q.job_id for q in queued]
            for chain, job in zip(members, queued):
                chain.job_ids[sub.stage.name] = job.job_id
                chain.logs[sub.stage.name] = (job.log, job.script)
                marker = chain.marker(sub.stage.name)
                if marker:
                    by_marker[marker] = job.job_id
                if backend.writes:
                    if marker:
                        write_text_atomic(Path(marker + QUEUED), json.dumps(
                            {"job_id": job.job_id, "stage": sub.stage.name, "sweep_dir": str(sweep_dir),
                             "cluster": backend.cluster}) + "\n")
                    if unit.array:  # the stage's folder shows its array's logs, as a single job's would
                        link = chain.stage_folder(sub.stage.name) / ".submitit"
                        link.parent.mkdir(parents=True, exist_ok=True)
                        if not link.exists():
                            link.symlink_to(sub.folder, target_is_directory=True)
        for chain in chains:
            _note_shared(chain, by_marker)

    def _stage_job(self, chain: Chain, stage: Stage) -> StageJob:
        """What each job unpickles: the chain's frozen config, the task, Hydra's callbacks and version base
        (not the config store or loader, which a frozen config no longer needs)."""
        import cloudpickle  # submitit's own dependency: pickles the app's __main__ task by value
        from hydra.types import HydraContext
        from hydra.version import getbase
        from packaging.version import Version

        if self._shared is None:
            context = HydraContext(config_loader=None, callbacks=self.hydra_context.callbacks)
            base = getbase()  # the app's version_base: without it the job falls back to Hydra 1.1's chdir
            self._shared = cloudpickle.dumps((context, self.task_function, base if isinstance(base, Version) else None))
        if chain.pickled is None:
            chain.pickled = cloudpickle.dumps(chain.config)
        return StageJob(self._shared, chain.pickled, stage.name if chain.pipeline else None,
                        self.params.get("stage_key", "stage"))

    def _comments(self, chain: Chain, stage: Stage) -> List[str]:
        """What a stage job's script says about itself."""
        command = shlex.join([self.params.get("python") or sys.executable, sys.argv[0], *chain.overrides,
                              f"{self.params.get('stage_key', 'stage')}={stage.name}"])
        return [f"{PREFIX}: stage {stage.name} of job {chain.num} ({chain.names[stage.name]})",
                f"frozen config: {chain.folder / 'config.yaml'}", f"the same stage by hand: {command}"]

    # ------------------------------------------------------------------ telling what was done

    def _report(self, chains: List[Chain], backend: Backend, sweep_dir: Path, submissions: int) -> None:
        """One table per chain and, unless nothing may be written, manifest.json with the same facts."""
        manifest = Manifest(sweep_dir=str(sweep_dir), submitted=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            cluster=backend.cluster, submissions=submissions)
        for chain in chains:
            records = [self._record(chain, stage, backend) for stage in chain.stages]
            manifest.chains.append(ChainRecord(num=chain.num, overrides=chain.overrides, stages=records))
            print(f"{PREFIX}: job {chain.num}: {' '.join(chain.overrides) or '(no overrides)'}")
            print(format_table(("stage", "status", "job id", "depends on", "walltime", "mem", "cpus", "gpus", "log"),
                               [(r.stage, r.status, r.job_id, ",".join(r.depends_on) or "-", r.walltime, r.mem,
                                 r.cpus, r.gpus, r.log) for r in records]))
        if not backend.writes:
            return
        new = manifest.job_ids()
        path = write_manifest(manifest)
        arrays = sorted({j.split("_")[0] for j in new if "_" in j})
        how = f" in {submissions} submissions ({len(arrays)} arrays)" if arrays else ""
        print(f"{PREFIX}: {len(new)} jobs submitted{how} to {backend.describe()}; manifest {path}")
        if new and backend.cluster == "slurm":
            singles = sorted(j for j in new if "_" not in j)
            print(f"{PREFIX}: to cancel them all: scancel {' '.join(arrays + singles)}")
        elif new:
            print(f"{PREFIX}: to cancel them all: kdgat cancel {sweep_dir}")

    def _record(self, chain: Chain, stage: Stage, backend: Backend) -> StageRecord:
        action, _ = chain.actions[stage.name]
        state = chain.states[stage.name]
        notes = [f"trained again: {state.stale}"] if action == "submit" and state.stale else []
        notes += [state.note] if state.note else []
        log, script = chain.logs.get(stage.name, ("-", ""))
        res = stage.resources
        return StageRecord(
            stage=stage.name, action=("submitted" if backend.writes else "would submit") if action == "submit" else action,
            job_id=chain.job_ids.get(stage.name, "-"), job_name=chain.names[stage.name], needs=list(stage.needs),
            depends_on=[chain.job_ids.get(n, n) for n in stage.needs if chain.actions[n][0] != "done"],
            walltime=res.walltime, mem=res.mem, cpus=res.cpus, gpus=res.gpus, partition=res.partition, log=log,
            note="; ".join(notes), marker=chain.marker(stage.name) or "", script=script, script_text=_read(script) if backend.writes else "",
            config=str(chain.folder / "config.yaml") if action == "submit" and backend.writes else "")

    @staticmethod
    def _raise_if_failed(chains: List[Chain], backend: Backend) -> None:
        """After a run here: a pipeline whose stage failed ends the command with one line naming it."""
        pipelines = [c for c in chains if c.pipeline]
        states = backend.states([job for c in pipelines for job in c.job_ids.values()])
        failed = [f"job {c.num} stage {name} (see {c.logs.get(name, ('-',))[0]})" for c in pipelines
                  for name, job in c.job_ids.items() if states[job].state == "FAILED"]
        if failed:
            cancelled = sum(states[job].state == "CANCELLED" for c in pipelines for job in c.job_ids.values())
            raise LaunchError("failed: " + "; ".join(failed) + (f"; {cancelled} stages that need it cancelled"
                                                                if cancelled else ""))

    def _job_return(self, chain: Chain, results: Dict[str, Any]) -> JobReturn:
        """Hydra's record of one job: the stage job's own JobReturn for an app without a pipeline run here,
        else the chain's job ids (submitted) or each stage's result (run here)."""
        ids = {name: chain.job_ids[name] for name in chain.job_ids}
        if not results:
            return JobReturn(overrides=chain.overrides, cfg=chain.config, status=JobStatus.COMPLETED,
                             _return_value=ids)
        outcome = {name: results.get(job) for name, job in ids.items()}
        failed = [name for name, value in outcome.items() if isinstance(value, BaseException)]
        if not chain.pipeline and isinstance(outcome.get(JOB_STAGE), JobReturn):
            return outcome[JOB_STAGE]
        if failed:
            return JobReturn(overrides=chain.overrides, cfg=chain.config, status=JobStatus.FAILED,
                             _return_value=outcome[failed[0]])
        return JobReturn(overrides=chain.overrides, cfg=chain.config, status=JobStatus.COMPLETED,
                         _return_value={name: getattr(v, "return_value", v) for name, v in outcome.items()})


# ---------------------------------------------------------------------- small helpers

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


def _stage_state_function(path: Optional[str]) -> Any:
    """The app's `module.function` that tells a stage's state, from the pipeline node's `stage_state`."""
    if not path:
        return None
    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise PlanError(f"pipeline.stage_state={path!r} names no function ({err})") from None


def _note_shared(chain: Chain, by_marker: Dict[str, str]) -> None:
    for name, (action, _) in chain.actions.items():
        if action == "shared" and name not in chain.job_ids and chain.marker(name) in by_marker:
            chain.job_ids[name] = by_marker[chain.marker(name)]


def _cancel(backend: Backend, job_ids: List[str]) -> str:
    if not job_ids:
        return "nothing was queued"
    try:
        backend.cancel(job_ids)
    except RuntimeError as err:
        return str(err)
    return f"cancelled what this submission had queued: {' '.join(job_ids)}"


def _write_config(chain: Chain) -> Path:
    """The chain's frozen config, beside its stages, for people to read."""
    path = chain.folder / "config.yaml"
    # libyaml's dumper on the plain container: OmegaConf.to_yaml's pure-Python one took ~0.1 s a chain
    text = yaml.dump(OmegaConf.to_container(chain.config, enum_to_str=True),
                     Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)
    write_text_atomic(path, text)
    return path


def _snapshot(sweep_dir: Path) -> Path:
    """A copy of the app's code (its git-tracked files, else the script's folder) in the sweep."""
    root = Path(sys.argv[0]).resolve().parent
    target = sweep_dir / ".code"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True)
    files = [f for f in listed.stdout.split("\0") if f] if listed.returncode == 0 else None
    if files is None:
        shutil.copytree(root, target, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "multirun",
                                                                   "outputs", "data", "experimentruns"))
    else:
        for name in files:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            if (root / name).is_file():
                shutil.copy2(root / name, target / name)
    return target


class _submit_lock:
    """One launch at a time per user on this machine, from deciding what to submit until it is queued:
    of two identical launches the second finds the first's jobs queued and attaches to them."""

    def __init__(self, enabled: bool) -> None:
        self.lock = file_lock(Path(tempfile.gettempdir()) / f"{PREFIX}-{os.getuid()}.lock") if enabled else None

    def __enter__(self) -> None:
        if self.lock is not None:
            self.lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        if self.lock is not None:
            self.lock.release()


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
