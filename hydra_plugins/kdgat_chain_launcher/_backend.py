"""What the launcher asks of wherever stage jobs run: SLURM, this machine, or nowhere (a dry run).

The launcher plans (which stages, which resources, which go as arrays, what
each waits on); a backend acts on the plan through four verbs, in the spirit
of submitit's executors: `check` what it would refuse, `submit` with
dependencies, `cancel`, and tell each job's `states`. Adding a backend is one
subclass in a module of its own, named in `_backends.BACKENDS`.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from hydra_plugins.kdgat_chain_launcher._contract import QueuedRecord
from hydra_plugins.kdgat_chain_launcher._plan import Stage

# Job states after which a job will never run again.
ENDED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED", "GONE"}


@dataclass
class Task:
    """One stage of one chain, as a job (or one task of an array)."""

    chain: int  # the Hydra job number
    job: Callable[[], Any]  # what the job runs (pickled to the node)
    name: str
    after: List[str]  # job ids it waits on, all finished well first
    comments: List[str]  # what its script says about itself, for people


@dataclass
class Submission:
    """One submission: a stage of one chain, or of several chains as an array (task i = tasks[i]),
    each task waiting on its own chain's earlier stages."""

    stage: Stage
    tasks: List[Task]
    array: bool
    folder: Path  # where its logs and script go


@dataclass
class Queued:
    """A job the backend has accepted."""

    job_id: str
    log: str
    script: str = ""


@dataclass
class JobInfo:
    """What became of a job."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, ... or GONE
    exit_code: str = ""
    elapsed: str = ""
    timelimit: str = ""
    req_mem: str = ""
    max_rss_mb: Optional[float] = None
    reason: str = ""
    signal: Optional[int] = None  # the signal that ended one of its steps (9: SIGKILL, as the OOM killer sends)
    extra: Dict[str, Any] = field(default_factory=dict)


class Backend:
    """Where stage jobs run. Every method but `finish` may also be called by another process
    (`kdgat status`, `kdgat cancel`) that knows only the sweep's manifest."""

    cluster = ""
    writes = True  # False: nothing may be written or submitted (a dry run)
    guards = False  # True: it can run the retry guard of a chain (submit_guard)
    arrays = False  # True: chains that line up go as job arrays (max_array_size tasks at most)

    def __init__(self, params: Mapping[str, Any], sweep_dir: Path) -> None:
        self.params = params
        self.sweep_dir = sweep_dir
        self.snapshot: Optional[Path] = None  # the launcher's copy of the code, when it makes one

    def check(self, submissions: Sequence[Submission]) -> List[str]:
        """Why the backend could never run some of these jobs, one line each; [] when it could."""
        return []

    def submit(self, submission: Submission) -> List[Queued]:
        """Queue the submission's jobs, one per task, in task order."""
        raise NotImplementedError

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel jobs; raises RuntimeError, saying what may still be queued, when that fails."""
        raise NotImplementedError

    def states(self, job_ids: Sequence[str]) -> Dict[str, JobInfo]:
        raise NotImplementedError

    def alive(self, queued: QueuedRecord) -> bool:
        """Whether a job recorded by some launch (`<marker>.queued`) is still queued or running here, so
        that a new launch may wait on it instead of submitting it again."""
        return False

    def submit_guard(self, guard: Callable[[], Any], chain_dir: Path, number: int, jobs: Sequence[str],
                     name: str) -> Optional[str]:
        """`guard` (a _guard.Guard: it retries a chain's stages with more memory or time when they ran out) as
        a job that runs only if one of `jobs` ends badly; None where the backend has no such thing (this
        machine: nothing kills a stage for its memory here)."""
        return None

    def max_array_size(self) -> int:
        return 1

    def cancel_command(self, job_ids: Sequence[str]) -> Optional[str]:
        """The backend's own command that cancels these jobs, for people; None where `kdgat cancel` is the way."""
        return None

    def finish(self) -> Dict[str, Any]:
        """After the last submit: a local backend runs its jobs and returns what each returned, by id."""
        return {}

    def describe(self) -> str:
        """How the launcher's closing line names where the jobs went."""
        return self.cluster
