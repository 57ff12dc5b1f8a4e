"""The kdgat_chain launcher's work (`launcher.KdgatChainLauncher` hands it on): each Hydra job becomes a chain of stage jobs, chained by dependencies.

Planning is the same wherever the jobs go: every chain is planned and checked
before the first job is submitted; a stage already trained is skipped, one
already queued is attached to, one two chains share is submitted once; then a
backend (SLURM, this machine, or a dry run) checks, submits and runs them.
hydra-submitit-launcher is the model for the Hydra side, but not the base
class: it blocks until every job has finished, while a login node must be
free a second after submitting a 30-hour chain.

submitit is imported only inside the functions that submit; torch never.
"""

import os
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.kdgat_chain_launcher._arrays import StagePlan, Unit, plan_units
from hydra_plugins.kdgat_chain_launcher._backend import Backend, Submission, Task
from hydra_plugins.kdgat_chain_launcher._backends import make_backend
from hydra_plugins.kdgat_chain_launcher._chains import JOB_STAGE, Chain, note_shared, plan_chain, resume
from hydra_plugins.kdgat_chain_launcher._contract import (
    Attempt,
    ChainRecord,
    Manifest,
    QueuedRecord,
    StageRecord,
    write_attempt,
    write_manifest,
    write_queued,
)
from hydra_plugins.kdgat_chain_launcher._errors import LaunchError, PlanError, report
from hydra_plugins.kdgat_chain_launcher._files import file_lock, snapshot_code, write_text_atomic
from hydra_plugins.kdgat_chain_launcher._guard import ChainPlan, Guard, policy_of, write_plan
from hydra_plugins.kdgat_chain_launcher._job import StageJob
from hydra_plugins.kdgat_chain_launcher._plan import Stage
from hydra_plugins.kdgat_chain_launcher._slurm import request_key
from hydra_plugins.kdgat_chain_launcher._table import format_table

PREFIX = "kdgat_chain"


class ChainLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                       for k, v in params.items()}
        self.config: Optional[DictConfig] = None
        self.hydra_context: Any = None
        self.task_function: Any = None
        self._shared: Optional[bytes] = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        # The first folder of the sweep directory's path that this command makes (Hydra's sweeper makes it
        # after this), so that a launch that submits nothing removes what was made for it and only that.
        self._made = _first_missing(Path(str(config.hydra.sweep.dir)).absolute())
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
            returns = self._launch(job_overrides, initial_job_idx)
        except LaunchError as err:
            self._remove_unused_sweep_dir()
            report(err)
            raise
        if self.params.get("dry_run"):
            self._remove_unused_sweep_dir()
        return returns

    def _remove_unused_sweep_dir(self) -> None:
        """A dry run or a refused launch leaves no folder holding only Hydra's multirun.yaml behind."""
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        made = getattr(self, "_made", None)
        if made is None or not sweep_dir.is_dir() or {p.name for p in sweep_dir.iterdir()} - {"multirun.yaml"}:
            return
        ours = {sweep_dir, sweep_dir / "multirun.yaml", *sweep_dir.parents}
        if all(p in ours for p in made.rglob("*")):
            shutil.rmtree(made, ignore_errors=True)

    def _launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        try:
            backend = make_backend(self.params, sweep_dir)
            chains = [plan_chain(self.hydra_context.config_loader.load_sweep_config(self.config, list(o)),
                                 initial_job_idx + i, list(o), sweep_dir, self.params)
                      for i, o in enumerate(job_overrides)]
        except PlanError as err:
            raise LaunchError(str(err)) from None
        for chain in chains:
            for warning in chain.warnings:
                print(f"{PREFIX}: warning: job {chain.num}: {warning}", file=sys.stderr)
        with _submit_lock(enabled=backend.writes):
            resume(chains, backend, self.params.get("rerun"))
            for chain in chains:
                for stage in chain.stages:
                    if chain.actions[stage.name][0] != "submit":
                        continue
                    if chain.states[stage.name].missing:
                        raise LaunchError(f"job {chain.num}: stage {stage.name} cannot run: "
                                          f"{chain.states[stage.name].missing}")
                    try:
                        policy_of(self.params, stage)
                    except PlanError as err:
                        raise LaunchError(str(err)) from None
            units = self._units(chains, backend)
            submissions = [self._submission(i, unit, chains, sweep_dir) for i, unit in enumerate(units)]
            problems = backend.check(submissions)
            if problems:
                raise LaunchError("; ".join(problems) + "; nothing submitted")
            submitted = self._submit(chains, units, submissions, backend, sweep_dir)
            self._guard(chains, backend, sweep_dir, submitted)
            self._report(chains, backend, sweep_dir, len(units))
        results = backend.finish()
        if results:
            self._raise_if_failed(chains, backend)
        return [self._job_return(chain, results) for chain in chains]

    def _units(self, chains: List[Chain], backend: Backend) -> List[Unit]:
        """What to submit, as job arrays where chains line up (hydra.launcher.array) or as single jobs."""
        plans, arrayable = [], []
        for chain in chains:
            submit = {s.name for s in chain.stages if chain.actions[s.name][0] == "submit"}
            plans.append([StagePlan(name=s.name, needs=tuple(n for n in s.needs if n in submit),
                                    params=request_key(s.resources, self.params, s.tasks))
                          for s in chain.stages if s.name in submit])
            arrayable.append(all(chain.actions[s.name][0] in ("submit", "done") for s in chain.stages))
        enabled = bool(self.params.get("array", True)) and len(chains) > 1 and backend.arrays
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
                sweep_dir: Path) -> List[str]:
        """Each submission in order, waiting on the jobs it needs; all or nothing: a refused sbatch cancels
        what this launch had queued."""
        if backend.writes:
            if self.params.get("snapshot"):
                backend.snapshot = snapshot_code(Path(sys.argv[0]).resolve().parent, sweep_dir / ".code")
            for chain in chains:
                chain.show_resources()
                _write_config(chain)
        by_marker: Dict[str, str] = {}  # marker -> the job of this launch that writes it
        submitted: List[str] = []
        for unit, sub in zip(units, submissions):
            members = [chains[c] for c in unit.chains]
            for chain, task in zip(members, sub.tasks):
                note_shared(chain, by_marker)
                task.job = self._stage_job(chain, sub.stage) if backend.writes else None  # a dry run runs nothing
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
                        write_queued(marker, QueuedRecord(job.job_id, sub.stage.name, str(sweep_dir), backend.cluster))
                    if unit.array:  # the stage's folder shows its array's logs, as a single job's would
                        link = chain.stage_folder(sub.stage.name) / ".submitit"
                        link.parent.mkdir(parents=True, exist_ok=True)
                        if not link.exists():
                            link.symlink_to(sub.folder, target_is_directory=True)
        for chain in chains:
            note_shared(chain, by_marker)
        return submitted

    def _guard(self, chains: List[Chain], backend: Backend, sweep_dir: Path, submitted: List[str]) -> None:
        """A guard job per chain whose stages may be retried (out of memory, out of time): _guard.py."""
        if not backend.guards:
            return
        for chain in chains:
            mine = [s for s in chain.stages if chain.actions[s.name][0] == "submit"]
            if not mine or not any(policy_of(self.params, s).enabled for s in mine):
                continue
            jobs = {s.name: chain.job_ids[s.name] for s in mine}
            try:
                if backend.writes:
                    write_plan(chain.folder, ChainPlan(
                        chain=chain.num, stages=chain.stages, names=chain.names,
                        jobs={s.name: self._stage_job(chain, s) for s in mine},
                        comments={s.name: self._comments(chain, s) for s in mine},
                        markers={s.name: chain.marker(s.name) for s in mine},
                        folders={s.name: str(chain.stage_folder(s.name)) for s in mine}, launcher=self.params,
                        sweep_dir=str(sweep_dir), snapshot=str(backend.snapshot) if backend.snapshot else None))
                chain.guard = backend.submit_guard(Guard(str(chain.folder), 1), chain.folder, 1, list(jobs.values()),
                                                   chain.names[mine[0].name])
            except Exception as err:
                raise LaunchError(f"job {chain.num}: {err}; {_cancel(backend, submitted)}") from None
            if chain.guard and backend.writes:
                write_attempt(chain.folder, Attempt(
                    number=1, jobs=jobs, logs={n: chain.logs[n][0] for n in jobs}, guard=chain.guard,
                    requests={s.name: s.resources.as_request() for s in mine}, cause="submitted"))
                submitted.append(chain.guard)

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
        if stage.name in chain.stage_jobs:
            return chain.stage_jobs[stage.name]
        chain.stage_jobs[stage.name] = StageJob(self._shared, chain.pickled, stage.name if chain.pipeline else None,
                                                self.params.get("stage_key", "stage"))
        return chain.stage_jobs[stage.name]

    def _comments(self, chain: Chain, stage: Stage) -> List[str]:
        """What a stage job's script says about itself."""
        command = shlex.join([self.params.get("python") or sys.executable, sys.argv[0], *_config_flags(sys.argv[1:]),
                              *chain.overrides, f"{self.params.get('stage_key', 'stage')}={stage.name}"])
        return [f"{PREFIX}: stage {stage.name} of job {chain.num} ({chain.names[stage.name]})",
                f"frozen config: {chain.folder / 'config.yaml'}", f"the same stage by hand: {command}"]

    # ------------------------------------------------------------------ telling what was done

    def _report(self, chains: List[Chain], backend: Backend, sweep_dir: Path, submissions: int) -> None:
        """One table per chain and, unless nothing may be written, manifest.json with the same facts."""
        manifest = Manifest(sweep_dir=str(sweep_dir), submitted=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            cluster=backend.cluster, submissions=submissions)
        for chain in chains:
            records = [self._record(chain, stage, backend) for stage in chain.stages]
            manifest.chains.append(ChainRecord(num=chain.num, overrides=chain.overrides, stages=records,
                                               guard=chain.guard or ""))
            print(f"{PREFIX}: job {chain.num}: {' '.join(chain.overrides) or '(no overrides)'}")
            print(format_table(("stage", "status", "job id", "depends on", "walltime", "mem", "cpus", "gpus", "log"),
                               [(r.stage, r.status, r.job_id, ",".join(r.depends_on) or "-", r.walltime, r.mem,
                                 r.cpus, r.gpus, r.log) for r in records]))
            if chain.guard:
                print(f"{PREFIX}: job {chain.num}: retry guard {chain.guard}: a stage killed for memory, or out of "
                      "time on its last requeue, is submitted again with more (hydra.launcher.retry)")
        if not backend.writes:
            return
        new = manifest.job_ids()
        path = write_manifest(manifest)
        arrays = sorted({j.split("_")[0] for j in new if "_" in j})
        how = f" in {submissions} submissions ({len(arrays)} arrays)" if arrays else ""
        print(f"{PREFIX}: {len(new)} jobs submitted{how} to {backend.describe()}; manifest {path}")
        if new:
            own = backend.cancel_command([c.guard for c in chains if c.guard] + sorted(new, key=lambda j: "_" not in j))
            print(f"{PREFIX}: to cancel them all: kdgat cancel {sweep_dir}" + (f" (or {own}: the guards first)" if own
                                                                                 else ""))

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


def _submit_lock(enabled: bool) -> Any:
    """One launch at a time per user on this machine, from deciding what to submit until it is queued:
    of two identical launches the second finds the first's jobs queued and attaches to them."""
    return file_lock(Path(tempfile.gettempdir()) / f"{PREFIX}-{os.getuid()}.lock") if enabled else nullcontext()


CONFIG_FLAGS = ("--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp")


def _config_flags(argv: Sequence[str]) -> List[str]:
    """The flags of the command line that choose the config (a user's --config-dir, -cn): the same stage by
    hand needs them too."""
    out: List[str] = []
    for i, arg in enumerate(argv):
        if arg in CONFIG_FLAGS and i + 1 < len(argv):
            out += [arg, argv[i + 1]]
        elif arg.split("=", 1)[0] in CONFIG_FLAGS and "=" in arg:
            out.append(arg)
    return out


def _first_missing(path: Path) -> Optional[Path]:
    """The topmost folder of `path` that does not exist yet (None when `path` exists)."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
