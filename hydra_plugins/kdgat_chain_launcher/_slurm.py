"""The SLURM backend: stage jobs submitted with sbatch (through submitit), chained by dependencies.

Every resource reaches the job's #SBATCH lines; a stage waits on the stages it
reads with `--dependency=afterok` (task by task, `aftercorr`, for arrays) and
`--kill-on-invalid-dep=yes`, so a failed stage cancels what depends on it
instead of leaving it pending forever. Before the first sbatch, every distinct
request is put to sinfo's limits and `sbatch --test-only`.
"""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hydra_plugins.kdgat_chain_launcher import _slurm_info
from hydra_plugins.kdgat_chain_launcher._arrays import frozen
from hydra_plugins.kdgat_chain_launcher._backend import Backend, JobInfo, Queued, Submission
from hydra_plugins.kdgat_chain_launcher._contract import QueuedRecord
from hydra_plugins.kdgat_chain_launcher._plan import limit_problem
from hydra_plugins.kdgat_chain_launcher._resources import Resources

PREFIX = "kdgat_chain"


def sbatch_parameters(resources: Resources, launcher: Mapping[str, Any], name: str, after: Sequence[str],
                      dependency: str = "afterok", tasks: int = 1) -> Dict[str, Any]:
    """submitit SlurmExecutor parameters for one stage job: every resource reaches #SBATCH.

    `after`: the jobs it waits on; `dependency`: afterok (every one finished well), or aftercorr
    for an array whose task i waits on task i of each array in `after`. `tasks` > 1: a data-parallel
    stage, one process (task) per GPU sharing the job's CPUs, all started by srun."""
    params: Dict[str, Any] = {
        "job_name": name,
        **resources.sbatch_parameters(launcher),
        "signal_delay_s": int(launcher.get("signal_delay_s") or 120),
        "stderr_to_stdout": True,
    }
    for key in ("account", "qos", "constraint", "mail_type", "mail_user"):
        if launcher.get(key):
            params[key] = launcher[key]
    if tasks > 1:
        params.update(ntasks_per_node=tasks, cpus_per_task=max(1, resources.cpus // tasks))
    extra = {**dict(launcher.get("additional_parameters") or {}), **dict(resources.sbatch)}
    if after:
        extra["dependency"] = f"{dependency}:" + ":".join(after)
        extra["kill-on-invalid-dep"] = "yes"
    if extra:
        params["additional_parameters"] = extra
    return params


def comment(text: str) -> str:
    """A script comment that no newline in a path or value can turn into a command."""
    return "# " + text.replace("\r", "\\r").replace("\n", "\\n")


class SlurmBackend(Backend):
    cluster = "slurm"
    guards = True
    arrays = True

    def __init__(self, params: Mapping[str, Any], sweep_dir: Path) -> None:
        super().__init__(params, sweep_dir)
        self._live: Optional[set] = None

    # ------------------------------------------------------------------ the sbatch script

    def setup_lines(self, comments: Sequence[str]) -> List[str]:
        lines = [
            "set -e  # a failing set-up line fails the job, and says which line in the log",
            """trap 'echo "kdgat_chain: set-up line failed (exit $?): $BASH_COMMAND" >&2' ERR""",
            *(comment(text) for text in comments),
        ]
        if self.snapshot is not None:
            paths = ":".join(shlex.quote(str(self.snapshot / p)) for p in self.params.get("snapshot_pythonpath") or ["."])
            lines.append(f'export PYTHONPATH={paths}"${{PYTHONPATH:+:$PYTHONPATH}}"')
        return lines + list(self.params.get("setup") or []) + ["trap - ERR"]

    def parameters(self, submission: Submission) -> Dict[str, Any]:
        """The sbatch parameters of a submission: an array's tasks wait task by task (aftercorr)."""
        tasks = submission.tasks
        if submission.array:
            names = {t.name for t in tasks}
            after = sorted({job.split("_")[0] for t in tasks for job in t.after}, key=str)
            return {**sbatch_parameters(submission.stage.resources, self.params,
                                        names.pop() if len(names) == 1 else f"{submission.stage.name}_array",
                                        after, dependency="aftercorr", tasks=submission.stage.tasks),
                    "array_parallelism": int(self.params.get("array_parallelism") or len(tasks))}
        return sbatch_parameters(submission.stage.resources, self.params, tasks[0].name, tasks[0].after,
                                 tasks=submission.stage.tasks)

    def comments(self, submission: Submission) -> List[str]:
        if not submission.array:
            return submission.tasks[0].comments
        return [f"{PREFIX}: stage {submission.stage.name} of {len(submission.tasks)} jobs, one array task each:"] + [
            f"  task {i}: job {task.chain} ({task.name}); " + "; ".join(task.comments[1:])
            for i, task in enumerate(submission.tasks)]

    def script(self, submission: Submission) -> str:
        """The sbatch script of a submission as submitit writes it, without submitting it (dry run and
        --test-only). submitit has no public call for this: its renderer is used directly, with the
        version range pinned in pyproject.toml, and a cluster test compares it with a submitted script."""
        from submitit.slurm.slurm import _make_sbatch_string

        python = self.params.get("python") or shlex.quote(sys.executable)
        params = self.parameters(submission)
        if submission.array:
            params["map_count"] = len(submission.tasks)
        return _make_sbatch_string(
            command=f"{python} -u -m submitit.core._submit {shlex.quote(str(submission.folder))}",
            folder=submission.folder, setup=self.setup_lines(self.comments(submission)), **params)

    # ------------------------------------------------------------------ the four verbs

    def check(self, submissions: Sequence[Submission]) -> List[str]:
        """sinfo's limits first, naming what the cluster allows; then `sbatch --test-only`, once per
        distinct request, for the rules sinfo does not show (QOS, accounts)."""
        if shutil.which("sbatch") is None:
            return ["sbatch is not on PATH, so this machine cannot submit to SLURM; run the stages here with "
                    "hydra.launcher.cluster=local, or preview with hydra.launcher.dry_run=true"]
        problems, fitting = self._limit_problems(submissions)
        distinct = list({request_key(s.stage.resources, self.params, s.stage.tasks): s for s in fitting}.values())
        for sub, verdict in zip(distinct, test_only([self.script(s) for s in distinct])):
            if verdict.startswith("REFUSED"):
                res = sub.stage.resources
                text = (f"stage {sub.stage.name}: {verdict[len('REFUSED: '):]} (walltime {res.walltime}, mem "
                        f"{res.mem}, cpus {res.cpus}, gpus {res.gpus}, partition {res.partition or 'default'})")
                problems.setdefault(text, []).extend(str(t.chain) for t in sub.tasks)
        return self._refusals(problems)

    @staticmethod
    def _refusals(problems: Mapping[str, List[str]]) -> List[str]:
        """One line per problem, naming its jobs."""
        return [f"SLURM would never run job {','.join(dict.fromkeys(nums))} {text}" for text, nums in problems.items()]

    def _limit_problems(self, submissions: Sequence[Submission]) -> Tuple[Dict[str, List[str]], List[Submission]]:
        """Requests over what sinfo says a partition's largest node and time limit allow (problem -> job
        numbers), and the submissions within them."""
        known = _slurm_info.partitions()
        problems: Dict[str, List[str]] = {}
        fitting = []
        for sub in submissions:
            res = sub.stage.resources
            problem = limit_problem(res, res.partition or self.params.get("partition"), known)
            if problem:
                problems.setdefault(f"stage {sub.stage.name}: {problem}", []).extend(str(t.chain) for t in sub.tasks)
            else:
                fitting.append(sub)
        return problems, fitting

    def submit(self, submission: Submission) -> List[Queued]:
        executor = self._executor(submission.folder)
        executor.update_parameters(setup=self.setup_lines(self.comments(submission)), **self.parameters(submission))
        try:
            if submission.array:
                with executor.batch():
                    jobs = [executor.submit(task.job) for task in submission.tasks]
            else:
                jobs = [executor.submit(submission.tasks[0].job)]
        except Exception as err:
            raise RuntimeError(_reason(err)) from err
        return [Queued(job.job_id, str(job.paths.stdout), str(job.paths.submission_file)) for job in jobs]

    def submit_one(self, stage: str, resources: Resources, job: Any, name: str, after: Sequence[str], folder: Path,
                   comments: Sequence[str], tasks: int = 1) -> Queued:
        """One stage job outside a launch (a guard's retry)."""
        executor = self._executor(folder)
        executor.update_parameters(setup=self.setup_lines(comments),
                                   **sbatch_parameters(resources, self.params, name, after, tasks=tasks))
        try:
            submitted = executor.submit(job)
        except Exception as err:
            raise RuntimeError(f"sbatch refused stage {stage}: {_reason(err)}") from err
        return Queued(submitted.job_id, str(submitted.paths.stdout), str(submitted.paths.submission_file))

    def submit_guard(self, guard: Any, chain_dir: Path, number: int, jobs: Sequence[str], name: str) -> str:
        """The guard of attempt `number` of a chain: it waits on any one of `jobs` ending badly."""
        from hydra_plugins.kdgat_chain_launcher._resources import parse_resources

        resources = parse_resources(self.params.get("guard_resources") or {}, "hydra.launcher.guard_resources")
        params = sbatch_parameters(resources, self.params, f"guard_{name}", [])
        extra = {k: v for k, v in params.get("additional_parameters", {}).items() if k != "hold"}  # it waits anyway
        after_any_failure = "?".join(f"afternotok:{job}" for job in jobs)
        params["additional_parameters"] = {**extra, "dependency": after_any_failure, "kill-on-invalid-dep": "yes"}
        executor = self._executor(Path(chain_dir) / "retry" / f"guard-{number}")
        executor.update_parameters(setup=self.setup_lines([f"{PREFIX}: guard of attempt {number} of {chain_dir}"]),
                                   **params)
        try:
            return executor.submit(guard).job_id
        except Exception as err:
            raise RuntimeError(f"sbatch refused the retry guard: {_reason(err)}") from err

    def _executor(self, folder: Path) -> Any:
        import submitit

        return submitit.SlurmExecutor(folder=folder, python=self.params.get("python"),
                                      max_num_timeout=int(self.params.get("max_num_timeout", 3)))

    def cancel(self, job_ids: Sequence[str]) -> None:
        """scancel exits 0 for jobs that already ended, so a non-zero exit means it failed."""
        if not job_ids:
            return
        done = _slurm_info.run("scancel", *job_ids)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
            raise RuntimeError(f"scancel failed ({last[-1]}), so these may still be queued: {' '.join(job_ids)}")

    def states(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        return _slurm_info.job_states(job_ids)

    def alive(self, queued: QueuedRecord) -> bool:
        if queued.cluster != self.cluster or shutil.which("squeue") is None:
            return False
        if self._live is None:  # one squeue per launch
            self._live = _slurm_info.live_jobs()
        return queued.job_id in self._live

    def max_array_size(self) -> int:
        return int(self.params.get("max_array_size") or _slurm_info.max_array_size())

    def cancel_command(self, job_ids: Sequence[str]) -> Optional[str]:
        """scancel of whole arrays (not their tasks one by one)."""
        return "scancel " + " ".join(dict.fromkeys(j.split("_")[0] for j in job_ids))


def request_key(resources: Resources, launcher: Mapping[str, Any], tasks: int = 1) -> Any:
    """What two stage jobs must share to go in one array or one --test-only question: their sbatch
    parameters without name or dependency."""
    return frozen(sbatch_parameters(resources, launcher, "", [], tasks=tasks))


def test_only(scripts: Sequence[str]) -> List[str]:
    """SLURM's own verdict on whether each job could ever run (partition limits, QOS), without
    submitting it; the questions go out together, not one after the other."""
    if shutil.which("sbatch") is None:
        return ["not checked (no sbatch here)"] * len(scripts)
    procs = []
    for script in scripts:
        lines = [line for line in script.splitlines()
                 if not line.startswith(("#SBATCH --dependency", "#SBATCH --kill-on-invalid-dep"))]
        proc = subprocess.Popen(["sbatch", "--test-only"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.stdin.write("\n".join(lines))  # a script is far below a pipe's buffer: this never blocks
        proc.stdin.close()
        procs.append(proc)
    verdicts = []
    for proc in procs:
        out, err = proc.stdout.read(), proc.stderr.read()  # a line or two each
        proc.wait()
        last = (err or out).strip().splitlines()
        verdicts.append("ok" if proc.returncode == 0 else "REFUSED: " + (last[-1] if last else "?"))
    return verdicts


test_only.__test__ = False  # not a pytest test, whatever imports it


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    errors = [line for line in text if "error" in line.lower()]
    return (errors[-1] if errors else text[-1] if text else repr(err)).strip()
