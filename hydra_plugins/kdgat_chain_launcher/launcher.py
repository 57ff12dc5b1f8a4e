"""The kdgat_chain launcher: each Hydra job becomes a chain of SLURM stage jobs.

hydra-submitit-launcher's `BaseSubmititLauncher` is the model (the pickled
callable whose `__call__` runs the Hydra job on the node, `checkpoint` for
requeue), but not the base class: it builds one executor per launch and then
blocks until every job has finished, while a pipeline is several jobs per Hydra
job, each with its own resources and `--dependency=afterok`, and the login node
must be free again a second after submitting a 30-hour chain.

submitit is imported only inside the functions that submit; torch never.
"""

import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.kdgat_chain_launcher import _slurm
from hydra_plugins.kdgat_chain_launcher._arrays import StagePlan, Unit, frozen, plan_units
from hydra_plugins.kdgat_chain_launcher._plan import (
    PlanError,
    Stage,
    gpu_warnings,
    job_name,
    limit_problem,
    parse_sinfo,
    plan_stages,
    resume_actions,
    sbatch_parameters,
)

PREFIX = "kdgat_chain"
QUEUED = ".queued"  # <marker>.queued: the job that will write the marker


class StageFailed(RuntimeError):
    """Raised in a stage job whose task failed, so that the job exits non-zero.

    Hydra's run_job catches the task's exception and returns a FAILED status;
    a job that then exited 0 would be COMPLETED to SLURM and release the next
    stage.
    """


class StageJob:
    """What one stage's job runs: its Hydra job, with the chain's config frozen at submit time.

    The job's state travels as bytes pickled once per launch (the task, Hydra's callbacks and
    resolvers) and once per chain (the config), not once per stage: pickling a DictConfig is
    most of what submitting a job costs.
    """

    def __init__(self, shared: bytes, config: bytes, stage: str, stage_key: str) -> None:
        self.shared = shared
        self.config = config
        self.stage = stage
        self.stage_key = stage_key

    def __call__(self) -> None:
        hydra_context, task_function, singleton_state = pickle.loads(self.shared)
        config = pickle.loads(self.config)
        Singleton.set_state(singleton_state)
        setup_globals()
        with open_dict(config):
            config[self.stage_key] = self.stage
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.subdir = f"{config.hydra.job.num}/{self.stage}"
            config.hydra.job.id = os.environ.get("SLURM_JOB_ID", f"local-{os.getpid()}")
        ret = run_job(hydra_context=hydra_context, task_function=task_function, config=config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        if ret.status == JobStatus.FAILED:
            raise StageFailed(f"stage failed: {ret._return_value!r}") from ret._return_value

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On timeout or preemption: requeue this same stage; it resumes from its own checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


@dataclass
class Chain:
    """One Hydra job's stages, planned and validated, before anything is submitted."""

    num: int
    overrides: List[str]
    config: DictConfig
    stages: List[Stage]
    names: Dict[str, str]
    folder: Path
    warnings: List[str] = field(default_factory=list)
    # From the app's stage nodes: the completion marker, why a stage whose marker exists must run again
    # all the same, and why the stage could never run.
    markers: Dict[str, Optional[str]] = field(default_factory=dict)
    stale: Dict[str, Optional[str]] = field(default_factory=dict)
    missing: Dict[str, Optional[str]] = field(default_factory=dict)
    notes: Dict[str, Optional[str]] = field(default_factory=dict)
    # What the launcher does with each stage: ("submit" | "done" | "attached" | "shared", job id).
    actions: Dict[str, Any] = field(default_factory=dict)
    job_ids: Dict[str, str] = field(default_factory=dict)
    pickled: Optional[bytes] = None  # the config, pickled once for all its stage jobs


class KdgatChainLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                       for k, v in params.items()}
        self.config: Optional[DictConfig] = None
        self.hydra_context: Any = None
        self.task_function: Any = None
        self._node_state: Any = None

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

    # ------------------------------------------------------------------ planning

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        cluster = self.params.get("cluster", "slurm")
        if cluster not in ("slurm", "local"):
            _fail(f"hydra.launcher.cluster={cluster!r}; use slurm or local")
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        try:  # every chain is planned and checked before the first job is submitted
            chains = [self._plan(initial_job_idx + i, list(o), sweep_dir) for i, o in enumerate(job_overrides)]
        except PlanError as err:
            _fail(str(err))
        with _submit_lock(enabled=cluster == "slurm" and not self.params.get("dry_run")):
            self._resume(chains, can_ask_slurm=cluster == "slurm" and shutil.which("squeue") is not None)
            self._run(chains, cluster, sweep_dir)
        return [JobReturn(overrides=c.overrides, status=JobStatus.COMPLETED, _return_value=c.job_ids) for c in chains]

    def _run(self, chains: List[Chain], cluster: str, sweep_dir: Path) -> None:
        for chain in chains:
            for warning in chain.warnings:
                print(f"{PREFIX}: warning: job {chain.num}: {warning}", file=sys.stderr)
            for name, (action, _) in chain.actions.items():
                if action == "submit" and chain.missing.get(name):
                    _fail(f"job {chain.num}: stage {name} cannot run: {chain.missing[name]}")
        if self.params.get("dry_run"):
            self._dry_run(chains)
        elif cluster == "local":
            self._run_locally(chains, sweep_dir)
        else:
            self._submit(chains, sweep_dir)

    def _plan(self, num: int, overrides: List[str], sweep_dir: Path) -> Chain:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.job.num = num
        HydraConfig.instance().set_config(config)
        try:  # frozen now: environment, paths and times as at submit, whenever a stage starts
            with read_write(config.hydra):
                OmegaConf.resolve(config)
            pipeline = OmegaConf.to_container(config.pipeline)
        except Exception as err:
            raise PlanError(f"job {num} ({' '.join(overrides)}): cannot resolve its config: {err}") from err
        stages = plan_stages(pipeline)
        names = {s.name: job_name(self.params.get("job_name", "{stage}"), s.name,
                                  lambda key: OmegaConf.select(config, key, default=None)) for s in stages}
        nodes = pipeline.get("stages") or {}
        return Chain(num=num, overrides=overrides, config=config, stages=stages, names=names,
                     folder=sweep_dir / str(num), warnings=gpu_warnings(pipeline, stages),
                     markers={s.name: nodes[s.name].get("marker") for s in stages},
                     stale={s.name: nodes[s.name].get("stale") for s in stages},
                     missing={s.name: nodes[s.name].get("missing") for s in stages},
                     notes={s.name: nodes[s.name].get("note") for s in stages})

    def _resume(self, chains: List[Chain], can_ask_slurm: bool) -> None:
        """Decide, per stage, submit / skip (done) / attach (already queued); a marker two chains share
        is submitted once and the second chain waits on it."""
        rerun = self.params.get("rerun") or []
        rerun = {rerun} if isinstance(rerun, str) else set(rerun)
        live = _slurm.live_jobs() if can_ask_slurm else set()

        def queued(marker: str) -> Optional[str]:
            try:
                job = json.loads(Path(marker + QUEUED).read_text())["job_id"]
            except (OSError, ValueError, KeyError):
                return None
            return job if job in live else None

        stale = {chain.markers[n] for chain in chains for n, why in chain.stale.items() if why and chain.markers.get(n)}
        first_chain: Dict[str, int] = {}
        for chain in chains:
            chain.actions = resume_actions(chain.stages, chain.markers, lambda m: m not in stale and Path(m).exists(),
                                           queued, rerun)
            for name, (action, job) in chain.actions.items():
                marker = chain.markers.get(name)
                if action == "attached":
                    chain.job_ids[name] = job
                elif action == "submit" and marker:
                    if marker in first_chain:
                        chain.actions[name] = ("shared", first_chain[marker])
                    else:
                        first_chain[marker] = chain.num

    def _stage_job(self, chain: Chain, stage: Stage) -> StageJob:
        """What each job unpickles: the chain's frozen config and the task, and of Hydra's state only the
        resolvers and callbacks (not the config store or loader, which a frozen config no longer needs
        and which would make every job's pickle some 180 KB)."""
        import cloudpickle  # submitit's own dependency: pickles the app's __main__ task by value

        if self._node_state is None:
            from hydra.types import HydraContext
            from omegaconf.basecontainer import BaseContainer

            context = HydraContext(config_loader=None, callbacks=self.hydra_context.callbacks)
            state = {"instances": {}, "omegaconf_resolvers": dict(BaseContainer._resolvers)}
            self._node_state = cloudpickle.dumps((context, self.task_function, state))
        if chain.pickled is None:
            chain.pickled = cloudpickle.dumps(chain.config)
        return StageJob(self._node_state, chain.pickled, stage.name, self.params.get("stage_key", "stage"))

    def _write_config(self, chain: Chain) -> Path:
        """The chain's frozen config, beside its stages, for people to read."""
        chain.folder.mkdir(parents=True, exist_ok=True)
        path = chain.folder / "config.yaml"
        # libyaml's dumper on the plain container: OmegaConf.to_yaml's pure-Python one took ~0.1 s a chain
        text = yaml.dump(OmegaConf.to_container(chain.config, enum_to_str=True),
                         Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)
        _write_atomic(path, text)
        return path

    def _command(self, chain: Chain, stage: Stage) -> str:
        """The same stage run by hand."""
        return shlex.join([self.params.get("python") or sys.executable, sys.argv[0], *chain.overrides,
                           f"{self.params.get('stage_key', 'stage')}={stage.name}"])

    def _job_comments(self, chain: Chain, stage: Stage, config_path: Path) -> List[str]:
        """What a single stage job's script says about itself."""
        return [f"{PREFIX}: stage {stage.name} of job {chain.num} ({chain.names[stage.name]})",
                f"frozen config: {config_path}", f"the same stage by hand: {self._command(chain, stage)}"]

    def _array_comments(self, chains: List[Chain], stage: Stage, config_paths: Dict[int, Path]) -> List[str]:
        """What an array's script says about each of its tasks."""
        return [f"{PREFIX}: stage {stage.name} of {len(chains)} jobs, one array task each:"] + [
            f"  task {task}: job {chain.num} ({chain.names[stage.name]}), frozen config {config_paths[chain.num]}, "
            f"by hand: {self._command(chain, stage)}" for task, chain in enumerate(chains)]

    def _setup_lines(self, comments: List[str], snapshot: Optional[Path]) -> List[str]:
        lines = [
            "set -e  # a failing set-up line fails the job, and says which line in the log",
            """trap 'echo "kdgat_chain: set-up line failed (exit $?): $BASH_COMMAND" >&2' ERR""",
            *(_comment(text) for text in comments),
        ]
        if snapshot is not None:
            paths = ":".join(shlex.quote(str(snapshot / p)) for p in self.params.get("snapshot_pythonpath") or ["."])
            lines.append(f'export PYTHONPATH={paths}"${{PYTHONPATH:+:$PYTHONPATH}}"')
        return lines + list(self.params.get("setup") or []) + ["trap - ERR"]

    def _request(self, stage: Stage) -> Any:
        """What two stage jobs must share to go in one array or one --test-only question: their sbatch
        parameters without name or dependency."""
        return frozen(sbatch_parameters(stage, self.params, "", []))

    def _parameters(self, chain: Chain, stage: Stage) -> Dict[str, Any]:
        after = [chain.job_ids.get(n, f"<{n}>") for n in stage.needs if chain.actions[n][0] != "done"]
        return sbatch_parameters(stage, self.params, chain.names[stage.name], after)

    # ------------------------------------------------------------------ the three ways to run

    def _script(self, chain: Chain, stage: Stage) -> str:
        """The sbatch script of one stage job, as submitit writes it (for a dry run, and --test-only)."""
        from submitit.slurm.slurm import _make_sbatch_string

        python = self.params.get("python") or shlex.quote(sys.executable)
        folder = chain.folder / stage.name / ".submitit"
        return _make_sbatch_string(
            command=f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}", folder=folder,
            setup=self._setup_lines(self._job_comments(chain, stage, chain.folder / "config.yaml"), None),
            **self._parameters(chain, stage))

    def _check_with_slurm(self, chains: List[Chain]) -> None:
        """Refuse the whole submission before its first sbatch when SLURM could never run one of its jobs
        (more CPUs, memory or GPUs than any node, an unknown partition, a walltime over its limit), saying
        what the cluster allows: otherwise the chain would be found broken half-submitted, or hours later.
        sinfo's limits first; then `sbatch --test-only`, once per distinct request, for the rules sinfo
        does not show (QOS, accounts)."""
        partitions = parse_sinfo(_slurm.output(["sinfo", "-h", "-o", "%P|%l|%c|%m|%G"]))
        problems: Dict[str, List[str]] = {}
        distinct: Dict[Any, List[Any]] = {}  # request -> the (chain, stage) that make it
        for chain in chains:
            for stage in chain.stages:
                if chain.actions[stage.name][0] != "submit":
                    continue
                problem = limit_problem(stage.resources, stage.resources.partition or self.params.get("partition"),
                                        partitions)
                if problem:
                    problems.setdefault(f"stage {stage.name}: {problem}", []).append(str(chain.num))
                else:
                    distinct.setdefault(self._request(stage), []).append((chain, stage))
        groups = list(distinct.values())
        for group, verdict in zip(groups, _slurm.test_only([self._script(*group[0]) for group in groups])):
            if verdict.startswith("REFUSED"):
                stage = group[0][1]
                res = stage.resources
                problems.setdefault(
                    f"stage {stage.name}: {verdict[len('REFUSED: '):]} (walltime {res.walltime}, mem {res.mem}, "
                    f"cpus {res.cpus}, gpus {res.gpus}, partition {res.partition or 'default'})", []
                ).extend(str(chain.num) for chain, _ in group)
        if problems:
            _fail("SLURM would never run " + "; ".join(f"job {','.join(nums)} {text}" for text, nums in problems.items())
                  + "; nothing submitted")

    def _dry_run(self, chains: List[Chain]) -> None:
        scripts = {(chain.num, stage.name): self._script(chain, stage) for chain in chains for stage in chain.stages}
        verdicts = dict(zip(scripts, _slurm.test_only(list(scripts.values()))))
        for chain in chains:
            print(f"{PREFIX}: dry run, job {chain.num}: {' '.join(chain.overrides) or '(no overrides)'}")
            rows = []
            for stage in chain.stages:
                key = (chain.num, stage.name)
                rows.append(_row(chain, stage, "(dry run)", str(chain.folder / stage.name / ".submitit" / "%j_0_log.out"),
                                 chain.actions[stage.name][0]))
                print(f"\n--- sbatch script for stage {stage.name} (sbatch --test-only: {verdicts[key]}) ---\n"
                      f"{scripts[key]}")
            _print_table(rows)
        units = self._units(chains)
        jobs = sum(len(u.chains) for u in units)
        arrays = [u for u in units if u.array]
        print(f"{PREFIX}: would submit {jobs} jobs in {len(units)} submissions" +
              (f" ({len(arrays)} arrays: " + "; ".join(f"{u.stage} of jobs {','.join(str(chains[c].num) for c in u.chains)}"
                                                      for u in arrays) + ")" if arrays else ""))
        print(f"{PREFIX}: dry run: nothing submitted, nothing written")

    def _submit(self, chains: List[Chain], sweep_dir: Path) -> None:
        if shutil.which("sbatch") is None:
            _fail("sbatch is not on PATH, so this machine cannot submit to SLURM; run the stages here with "
                  "hydra.launcher.cluster=local, or preview with hydra.launcher.dry_run=true")
        import submitit

        self._check_with_slurm(chains)
        snapshot = self._snapshot(sweep_dir) if self.params.get("snapshot") else None
        config_paths = {chain.num: self._write_config(chain) for chain in chains}
        by_marker: Dict[str, str] = {}  # marker -> the job of this sweep that writes it
        logs: Dict[Any, Dict[str, str]] = {}  # (chain num, stage) -> log, script
        submitted: List[str] = []  # job and array ids, for the all-or-nothing cancel
        units = self._units(chains)
        array_ids: Dict[int, str] = {}
        for index, unit in enumerate(units):
            members = [chains[c] for c in unit.chains]
            stage = next(s for s in members[0].stages if s.name == unit.stage)
            for chain in members:
                self._note_shared(chain, by_marker)
                marker = chain.markers.get(stage.name)
                if marker and Path(marker).exists():  # forced or stale: set the old marker aside, it trains again
                    os.replace(marker, f"{marker}.rerun-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                executor = submitit.SlurmExecutor(
                    folder=(sweep_dir / ".arrays" / f"{index}_{stage.name}" if unit.array
                            else members[0].folder / stage.name / ".submitit"),
                    python=self.params.get("python"), max_num_timeout=int(self.params.get("max_num_timeout", 3)))
                if unit.array:
                    names = {chain.names[stage.name] for chain in members}
                    params = sbatch_parameters(stage, self.params, names.pop() if len(names) == 1 else
                                               f"{stage.name}_array", [array_ids[u] for u in unit.after],
                                               dependency="aftercorr")
                    parallelism = self.params.get("array_parallelism")
                    executor.update_parameters(setup=self._setup_lines(self._array_comments(members, stage, config_paths),
                                                                       snapshot),
                                               array_parallelism=int(parallelism or len(members)), **params)
                    with executor.batch():
                        jobs = [executor.submit(self._stage_job(chain, stage)) for chain in members]
                    array_ids[index] = jobs[0].job_id.split("_")[0]
                    submitted.append(array_ids[index])
                else:
                    chain = members[0]
                    executor.update_parameters(setup=self._setup_lines(
                                                   self._job_comments(chain, stage, config_paths[chain.num]), snapshot),
                                               **self._parameters(chain, stage))
                    jobs = [executor.submit(self._stage_job(chain, stage))]
                    submitted.append(jobs[0].job_id)
            except Exception as err:
                who = ", ".join(f"job {chain.num}" for chain in members)
                _fail(f"{who}: sbatch refused stage {stage.name}: {_slurm.reason(err)}; {_slurm.cancel(submitted)}")
            for chain, job in zip(members, jobs):
                chain.job_ids[stage.name] = job.job_id
                marker = chain.markers.get(stage.name)
                if marker:
                    by_marker[marker] = job.job_id
                    Path(marker).parent.mkdir(parents=True, exist_ok=True)
                    _write_atomic(Path(marker + QUEUED), json.dumps(
                        {"job_id": job.job_id, "stage": stage.name, "sweep_dir": str(sweep_dir)}) + "\n")
                logs[(chain.num, stage.name)] = {"log": str(job.paths.stdout), "script": str(job.paths.submission_file)}
                if unit.array:  # the stage's folder shows its array's logs, as a single job's would
                    link = chain.folder / stage.name / ".submitit"
                    link.parent.mkdir(parents=True, exist_ok=True)
                    if not link.exists():
                        link.symlink_to(job.paths.folder, target_is_directory=True)
        for chain in chains:
            self._note_shared(chain, by_marker)
        self._report(chains, sweep_dir, config_paths, logs, units)

    def _units(self, chains: List[Chain]) -> List[Unit]:
        """What to submit, as job arrays where chains line up (hydra.launcher.array) or as single jobs."""
        plans, arrayable = [], []
        for chain in chains:
            submit = {s.name for s in chain.stages if chain.actions[s.name][0] == "submit"}
            plans.append([StagePlan(name=s.name, needs=tuple(n for n in s.needs if n in submit),
                                    params=self._request(s))
                          for s in chain.stages if s.name in submit])
            arrayable.append(all(chain.actions[s.name][0] in ("submit", "done") for s in chain.stages))
        enabled = bool(self.params.get("array", True)) and len(chains) > 1
        size = int(self.params.get("max_array_size") or (_slurm.max_array_size() if enabled else 1))
        return plan_units(plans, arrayable, enabled, size)

    @staticmethod
    def _note_shared(chain: Chain, by_marker: Dict[str, str]) -> None:
        for name, (action, _) in chain.actions.items():
            if action == "shared" and name not in chain.job_ids and chain.markers.get(name) in by_marker:
                chain.job_ids[name] = by_marker[chain.markers[name]]

    def _report(self, chains: List[Chain], sweep_dir: Path, config_paths: Dict[int, Path],
                logs: Dict[Any, Dict[str, str]], units: List[Unit]) -> None:
        """One table per chain, the scancel line, and manifest.json with the same facts and each script."""
        manifest: Dict[str, Any] = {"sweep_dir": str(sweep_dir), "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                    "cluster": "slurm", "chains": []}
        for chain in chains:
            rows, records = [], []
            for stage in chain.stages:
                action = chain.actions[stage.name][0]
                if action != "submit":
                    rows.append(_row(chain, stage, chain.job_ids.get(stage.name, "-"), "-", action))
                    records.append(rows[-1])
                    continue
                found = logs[(chain.num, stage.name)]
                rows.append(_row(chain, stage, chain.job_ids[stage.name], found["log"], "submitted"))
                records.append({**rows[-1], "script": found["script"], "script_text": _read(found["script"]),
                                "config": str(config_paths[chain.num])})
            manifest["chains"].append({"num": chain.num, "overrides": chain.overrides, "stages": records})
            print(f"{PREFIX}: job {chain.num}: {' '.join(chain.overrides) or '(no overrides)'}")
            _print_table(rows)
        new = [r["job_id"] for c in manifest["chains"] for r in c["stages"] if r["status"] == "submitted"]
        arrays = sorted({j.split("_")[0] for j in new if "_" in j}, key=int)
        singles = sorted({j for j in new if "_" not in j}, key=int)
        manifest["submissions"] = len(units)
        _write_atomic(sweep_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        how = f" in {len(units)} submissions ({len(arrays)} arrays)" if arrays else ""
        print(f"{PREFIX}: {len(new)} jobs submitted{how}; manifest {sweep_dir / 'manifest.json'}")
        if new:
            print(f"{PREFIX}: to cancel them all: scancel {' '.join(arrays + singles)}")

    def _run_locally(self, chains: List[Chain], sweep_dir: Path) -> None:
        """The same plan on this machine: each stage in its own process, in order; a failure stops its dependents."""
        import submitit

        failures = []
        for chain in chains:
            outcome: Dict[str, str] = {}
            self._write_config(chain)
            for stage in chain.stages:
                if chain.actions[stage.name][0] == "done":
                    outcome[stage.name] = "COMPLETED (already done)"
                    continue
                blocked = [n for n in stage.needs if not outcome.get(n, "").startswith("COMPLETED")]
                if blocked:
                    outcome[stage.name] = f"SKIPPED (needs {', '.join(blocked)})"
                    continue
                executor = submitit.LocalExecutor(folder=chain.folder / stage.name / ".submitit",
                                                  python=self.params.get("python"))
                executor.update_parameters(timeout_min=max(1, stage.resources.walltime_s // 60))
                job = executor.submit(self._stage_job(chain, stage))
                print(f"{PREFIX}: job {chain.num}: running stage {stage.name} here (log {job.paths.stdout})", flush=True)
                try:
                    job.result()
                    outcome[stage.name] = "COMPLETED"
                except Exception:
                    outcome[stage.name] = "FAILED"
                    failures.append(f"job {chain.num} stage {stage.name} (see {job.paths.stderr})")
            for name, state in outcome.items():
                print(f"{PREFIX}: job {chain.num}: {name}: {state}")
        if failures:
            _fail("failed: " + "; ".join(failures))

    def _snapshot(self, sweep_dir: Path) -> Path:
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


# ---------------------------------------------------------------------- small helpers

@contextmanager
def _submit_lock(enabled: bool) -> Iterator[None]:
    """One submission at a time per user on this machine, from deciding what to submit until it is
    queued: of two identical submissions the second finds the first's jobs queued and attaches to them.
    An OS lock on an open file, so a killed submission never leaves it held."""
    if not enabled:
        yield
        return
    import fcntl
    import tempfile

    path = Path(tempfile.gettempdir()) / f"{PREFIX}-{os.getuid()}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _comment(text: str) -> str:
    """A script comment that no newline in a path or value can turn into a command."""
    return "# " + text.replace("\r", "\\r").replace("\n", "\\n")


def _row(chain: Chain, stage: Stage, job_id: str, log: str, status: str) -> Dict[str, Any]:
    res = stage.resources
    status = {"done": "skipped (done)", "attached": "attached (queued)", "shared": "shared in this sweep"}.get(
        status, status)
    if status in ("submit", "submitted") and chain.stale.get(stage.name):
        status += f"; trained again: {chain.stale[stage.name]}"
    if chain.notes.get(stage.name):
        status += f"; {chain.notes[stage.name]}"
    return {"stage": stage.name, "status": status, "job_id": job_id, "job_name": chain.names[stage.name],
            "needs": list(stage.needs),
            "depends_on": [chain.job_ids.get(n, n) for n in stage.needs if chain.actions[n][0] != "done"],
            "walltime": res.walltime, "mem": res.mem,
            "cpus": res.cpus, "gpus": res.gpus, "partition": res.partition, "log": log}


def _print_table(rows: List[Dict[str, Any]]) -> None:
    header = ("stage", "status", "job id", "depends on", "walltime", "mem", "cpus", "gpus", "log")
    cells = [(r["stage"], r["status"], r["job_id"], ",".join(r["depends_on"]) or "-", r["walltime"], r["mem"],
              str(r["cpus"]), str(r["gpus"]), r["log"]) for r in rows]
    widths = [max(len(str(c[i])) for c in cells + [header]) for i in range(len(header))]
    for line in [header] + cells:
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip())


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fail(message: str) -> None:
    print(f"{PREFIX}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)
