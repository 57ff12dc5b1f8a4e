"""The local backend: the same plan on this machine, each stage job in its own process, one at a time.

Jobs wait on their dependencies as on SLURM: a job runs once every job it
waits on has completed, and is cancelled when one of them fails (as
`--kill-on-invalid-dep` does). An array runs as its tasks. The launching
command is the scheduler, so it waits until every job has ended.

So that `kdgat status`, `logs` and `cancel` can ask from another process, each
job's state is a small JSON file in `<sweep>/.local/`, written only by the
launching command; `cancel` from elsewhere leaves a request file there, which
the scheduler acts on within a second.
"""

import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from hydra_plugins.kdgat_chain_launcher._backend import ENDED_STATES, Backend, JobInfo, Queued, Submission
from hydra_plugins.kdgat_chain_launcher._contract import QueuedRecord
from hydra_plugins.kdgat_chain_launcher._files import replace_symlink, write_text_atomic
from hydra_plugins.kdgat_chain_launcher._units import format_walltime

STATE_DIR = ".local"
POLL_S = 0.5


class LocalBackend(Backend):
    cluster = "local"

    def __init__(self, params: Mapping[str, Any], sweep_dir: Path) -> None:
        super().__init__(params, sweep_dir)
        self.dir = sweep_dir / STATE_DIR
        self.queue: List[Dict[str, Any]] = []  # jobs submitted by this command, in submission order
        self.results: Dict[str, Any] = {}

    # ------------------------------------------------------------------ the four verbs

    def submit(self, submission: Submission) -> List[Queued]:
        queued = []
        for i, task in enumerate(submission.tasks):
            job_id = f"local-{os.getpid()}-{len(self.queue) + 1}"
            folder = submission.folder / f"task_{i}" if submission.array else submission.folder
            job = {"job_id": job_id, "stage": submission.stage.name, "chain": task.chain, "after": task.after,
                   "state": "PENDING", "reason": "", "folder": str(folder), "log": str(folder / "log.out"),
                   "timelimit": submission.stage.resources.walltime, "scheduler": os.getpid()}
            self._save(job)
            self.queue.append({**job, "run": task.job, "walltime_s": submission.stage.resources.walltime_s,
                               "tasks": submission.stage.tasks})
            queued.append(Queued(job_id, job["log"]))
        return queued

    def cancel(self, job_ids: Sequence[str]) -> None:
        """A request the scheduling command acts on; jobs whose scheduler is gone are marked cancelled."""
        for job_id in job_ids:
            record = self._load(job_id)
            if record is None or record["state"] in ENDED_STATES:
                continue
            if _alive(record.get("scheduler")):
                write_text_atomic(self._home(job_id) / f"{job_id}.cancel", "")
            else:
                self._save(record, state="CANCELLED", reason="its launching command had ended")

    def states(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        infos = {}
        for job_id in job_ids:
            record = self._load(job_id)
            if record is None:
                infos[job_id] = JobInfo(job_id, "GONE")
                continue
            state = record["state"]
            if state not in ENDED_STATES and not _alive(record.get("scheduler")):
                state, record["reason"] = "CANCELLED", "its launching command ended before it did"
            elapsed = (record.get("ended") or time.time()) - record["started"] if record.get("started") else None
            infos[job_id] = JobInfo(job_id, state, record.get("exit_code", ""),
                                    format_walltime(int(elapsed)) if elapsed is not None else "",
                                    record.get("timelimit", ""), "", record.get("max_rss_mb"), record.get("reason", ""),
                                    record.get("signal"))
        return infos

    def alive(self, queued: QueuedRecord) -> bool:
        if queued.cluster != self.cluster or not queued.sweep_dir:
            return False
        job_id = queued.job_id
        record = Path(queued.sweep_dir) / STATE_DIR / f"{job_id}.json"
        other = LocalBackend(self.params, Path(queued.sweep_dir))
        if other.states([job_id])[job_id].state in ENDED_STATES:
            return False
        if self.writes and record.parent != self.dir:  # attached: its state read and cancelled from here too
            replace_symlink(self.dir / record.name, record)
        return True

    # ------------------------------------------------------------------ running the queue

    def finish(self) -> Dict[str, Any]:
        """Run every queued job whose dependencies completed, one at a time, until none is left."""
        pending = list(self.queue)
        while pending:
            job = next((j for j in pending if self._ready(j) is not None), None)
            if job is None:
                time.sleep(POLL_S)  # waiting on a job another command runs
                continue
            pending.remove(job)
            if self._requested_cancel(job["job_id"]):
                self._end(job, "CANCELLED", reason="cancelled before it started")
                self.results[job["job_id"]] = RuntimeError("cancelled before it started")
            elif self._ready(job) is False:
                failed = [a for a in job["after"] if self._state(a) != "COMPLETED"]
                self._end(job, "CANCELLED", reason=f"DependencyNeverSatisfied ({', '.join(failed)})")
                self.results[job["job_id"]] = RuntimeError(f"cancelled: {job['reason']}")
                print(f"kdgat_chain: job {job['chain']}: stage {job['stage']} cancelled: {job['reason']}", flush=True)
            else:
                self._run(job)
        return self.results

    def _ready(self, job: Dict[str, Any]) -> Optional[bool]:
        """True when every dependency completed, False when one never will, None while one still runs."""
        states = [self._state(a) for a in job["after"]]
        if any(s in ENDED_STATES and s != "COMPLETED" for s in states):
            return False
        return True if all(s == "COMPLETED" for s in states) else None

    def _state(self, job_id: str) -> str:
        return self.states([job_id])[job_id].state

    def _run(self, job: Dict[str, Any]) -> None:
        """One job in its own process (submitit's local executor: walltime enforced, requeue on timeout)."""
        import submitit

        executor = submitit.LocalExecutor(folder=job["folder"], python=self.params.get("python"))
        executor.update_parameters(timeout_min=max(1, -(-job["walltime_s"] // 60)), tasks_per_node=job["tasks"],
                                   signal_delay_s=int(self.params.get("signal_delay_s") or 120))
        job["started"] = time.time()
        with _interruptible_children():
            handle = executor.submit(job["run"])
        replace_symlink(Path(job["log"]), Path(handle.paths.stdout).name)
        self._save(job, state="RUNNING", pid=handle.job_id)
        print(f"kdgat_chain: job {job['chain']}: stage {job['stage']} running here (log {job['log']})", flush=True)
        cancelled, shown = False, 0
        while not handle.done():
            if not cancelled and self._requested_cancel(job["job_id"]):
                handle.cancel()
                cancelled = True
            shown = _echo(Path(handle.paths.stdout), shown)
            time.sleep(POLL_S)
        _echo(Path(handle.paths.stdout), shown)
        try:
            self.results[job["job_id"]] = handle.results()[0]  # task 0's (every task's, when several)
            state, code = "COMPLETED", "0:0"
        except Exception as err:  # the stage failed, or was cancelled or killed
            self.results[job["job_id"]] = err
            state, code = ("CANCELLED", "0:15") if cancelled else ("FAILED", "1:0")
        self._end(job, state, exit_code=code)
        print(f"kdgat_chain: job {job['chain']}: stage {job['stage']} {state.lower()} after "
              f"{job['ended'] - job['started']:.0f} s", flush=True)

    def _end(self, job: Dict[str, Any], state: str, **extra: Any) -> None:
        self._save(job, state=state, ended=time.time(), **extra)

    def _requested_cancel(self, job_id: str) -> bool:
        return (self.dir / f"{job_id}.cancel").exists()

    def _save(self, job: Dict[str, Any], **changes: Any) -> None:
        """Update a job's record (only this command writes it) and its file, for other processes."""
        job.update(changes)
        public = {k: v for k, v in job.items() if k not in ("run", "walltime_s", "tasks")}
        write_text_atomic(self._home(job["job_id"]) / f"{job['job_id']}.json", json.dumps(public, indent=1) + "\n")

    def _load(self, job_id: str) -> Optional[Dict[str, Any]]:
        try:
            return json.loads((self.dir / f"{job_id}.json").read_text())
        except (OSError, ValueError):
            return None

    def _home(self, job_id: str) -> Path:
        """The state folder of the launch that runs a job: this one's, or (attached) another's."""
        return (self.dir / f"{job_id}.json").resolve().parent

    def describe(self) -> str:
        return "this machine"


def _echo(log: Path, offset: int) -> int:
    """Print the lines a running job has added to its log since `offset`, indented; the new offset."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            text = handle.read()
    except OSError:
        return offset
    complete = text[:text.rfind(b"\n") + 1]
    for line in complete.decode(errors="replace").splitlines():
        if line.strip() and "submitit" not in line.split(" - ")[0]:  # submitit's own bookkeeping stays in the log
            print(f"  | {line}", flush=True)
    return offset + len(complete)


@contextmanager
def _interruptible_children():
    """Start processes that a SIGINT stops, which is how submitit cancels a local job.

    A command a script starts in the background (`cmd &` without job control,
    as CI runners often do) ignores SIGINT, and its children inherit that:
    the cancel would then do nothing and the stage would run on. A handler
    (unlike an ignore) is reset to the default in a new program, so installing
    one while the job starts is enough."""
    before = signal.getsignal(signal.SIGINT)
    try:
        if before is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread, where signals cannot be changed
        before = None
    try:
        yield
    finally:
        if before is signal.SIG_IGN:
            signal.signal(signal.SIGINT, before)


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
