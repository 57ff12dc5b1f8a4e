"""The guard: one small job per chain that retries it, inside the cluster, with no process of the user's left.

It waits on the chain's stage jobs with `--dependency=afternotok:a?afternotok:b...` and
`--kill-on-invalid-dep=yes`: when every stage succeeds SLURM cancels it by itself;
when one fails (or is cancelled) it runs. It then acts only on its own chain's
out-of-memory kill or last timeout (_retry.classify), never on a cancel: it
submits the failed stage again with the larger request, with every stage that
needs it (the cascade cancelled those), and a new guard for the new jobs; the
retried stages keep their plan, fingerprints and folders, and a requeued stage
still resumes from its checkpoint. Each attempt is one file (_contract.Attempt).
"""

import dataclasses
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from hydra_plugins.kdgat_chain_launcher._backend import ENDED_STATES
from hydra_plugins.kdgat_chain_launcher._contract import (
    Attempt,
    QueuedRecord,
    read_attempts,
    write_attempt,
    write_outcome,
    write_queued,
)
from hydra_plugins.kdgat_chain_launcher._files import atomic_write
from hydra_plugins.kdgat_chain_launcher._plan import Stage, forced_stages
from hydra_plugins.kdgat_chain_launcher._resources import parse_resources
from hydra_plugins.kdgat_chain_launcher._retry import bigger, classify, parse_policy, partition_of

PLAN = "chain.pkl"
FAILURES = {"FAILED", "OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


@dataclass
class ChainPlan:
    """What a guard needs to submit a chain's stages again, written once by the launcher."""

    chain: int
    stages: List[Stage]  # in dependency order
    names: Dict[str, str]
    jobs: Dict[str, Any]  # stage -> the StageJob it runs
    comments: Dict[str, List[str]]
    markers: Dict[str, Optional[str]]
    folders: Dict[str, str]  # stage -> its output folder
    launcher: Dict[str, Any]  # the launcher's settings (python, setup, partition, retry, ...)
    sweep_dir: str
    snapshot: Optional[str] = None


def write_plan(chain_dir: Path, plan: ChainPlan) -> None:
    import cloudpickle

    with atomic_write(chain_dir / "retry" / PLAN, "wb") as handle:
        cloudpickle.dump(plan, handle)


def policy_of(plan_launcher: Mapping[str, Any], stage: Stage) -> Any:
    return parse_policy([plan_launcher.get("retry"), stage.resources.retry], f"pipeline.stages.{stage.name}.resources.retry")


class Guard:
    """What a guard job runs: look at attempt `number` of the chain in `chain_dir`, and retry if it should."""

    def __init__(self, chain_dir: str, number: int) -> None:
        self.chain_dir = Path(chain_dir)
        self.number = number

    def __call__(self) -> str:
        with open(self.chain_dir / "retry" / PLAN, "rb") as handle:
            plan: ChainPlan = pickle.load(handle)
        attempt = next(a for a in read_attempts(self.chain_dir) if a.number == self.number)
        outcome = self._decide(plan, attempt)
        write_outcome(self.chain_dir, self.number, outcome)
        print(f"kdgat_chain guard: {outcome}", flush=True)
        return outcome

    def _decide(self, plan: ChainPlan, attempt: Attempt) -> str:
        from hydra_plugins.kdgat_chain_launcher import _slurm_info

        infos = _final_states(list(attempt.jobs.values()))
        failed = [s for s in plan.stages if s.name in attempt.jobs and infos[attempt.jobs[s.name]].state in FAILURES]
        if not failed:
            return "nothing to retry: no stage failed (" + ", ".join(
                f"{name} {infos[job].state}" for name, job in attempt.jobs.items()) + ")"
        stage = failed[0]
        info = infos[attempt.jobs[stage.name]]
        current = parse_resources(attempt.requests[stage.name], f"stage {stage.name}")
        failure = classify(info.state, info.signal, _read(attempt.logs.get(stage.name, "")), info.max_rss_mb,
                           current.mem_mb)
        said = f"stage {stage.name} {info.state} (exit {info.exit_code}, job {info.job_id})"
        if failure is None:
            return f"not retried: {said}: not out of memory or out of time"
        done = {kind: attempt.retries.get(f"{stage.name}:{kind}", 0) for kind in ("oom", "timeout")}
        partition = partition_of(current.partition or plan.launcher.get("partition"), _slurm_info.partitions())
        larger, why = bigger(current, failure, policy_of(plan.launcher, stage), done, partition)
        if larger is None:
            return f"not retried: {said}: {why}"
        return self._retry(plan, attempt, stage, larger, failure, f"stage {stage.name}: {why} (job {info.job_id})",
                           infos)

    def _retry(self, plan: ChainPlan, attempt: Attempt, stage: Stage, larger: Any, failure: str, cause: str,
               infos: Dict[str, Any]) -> str:
        """The failed stage and every stage that needs it, as single jobs, and a guard for them."""
        from hydra_plugins.kdgat_chain_launcher._slurm import SlurmBackend

        for key in [k for k in os.environ if k.startswith(("SLURM_", "SBATCH_", "SUBMITIT_"))]:
            del os.environ[key]  # the guard's own job must not shape the jobs it submits
        backend = SlurmBackend(plan.launcher, Path(plan.sweep_dir))
        backend.snapshot = Path(plan.snapshot) if plan.snapshot else None
        again = forced_stages(plan.stages, {stage.name})
        jobs, logs, requests = dict(attempt.jobs), dict(attempt.logs), dict(attempt.requests)
        requests[stage.name] = larger.as_request()
        number = self.number + 1
        for s in plan.stages:
            if s.name not in again:
                continue
            after = [jobs[n] for n in s.needs if n in jobs and (n in again or infos.get(jobs[n]) is None
                                                               or infos[jobs[n]].state != "COMPLETED")]
            resources = parse_resources(requests[s.name], f"stage {s.name}")
            queued = backend.submit_one(s.name, resources, plan.jobs[s.name], plan.names[s.name], after,
                                        Path(plan.folders[s.name]) / f".attempt-{number}", plan.comments[s.name],
                                        tasks=dataclasses.replace(s, resources=resources).tasks)
            jobs[s.name], logs[s.name] = queued.job_id, queued.log
            if plan.markers.get(s.name):
                write_queued(plan.markers[s.name], QueuedRecord(queued.job_id, s.name, plan.sweep_dir, "slurm"))
        retries = dict(attempt.retries)
        retries[f"{stage.name}:{failure}"] = retries.get(f"{stage.name}:{failure}", 0) + 1
        new_jobs = [jobs[n] for n in again]
        guard = backend.submit_guard(Guard(str(self.chain_dir), number), self.chain_dir, number, new_jobs,
                                     plan.names[stage.name])
        write_attempt(self.chain_dir, Attempt(number=number, jobs=jobs, logs=logs, requests=requests,
                                              retries=retries, guard=guard, cause=cause))
        return f"retried {cause}: jobs {' '.join(new_jobs)}, guard {guard}"


def _final_states(jobs: List[str], deadline_s: float = 180) -> Dict[str, Any]:
    """Each job's state once all have ended (sacct may lag behind the dependency that started the guard)."""
    from hydra_plugins.kdgat_chain_launcher import _slurm_info

    deadline = time.monotonic() + deadline_s
    while True:
        infos = _slurm_info.job_states(jobs)
        if all(i.state in ENDED_STATES - {"GONE"} for i in infos.values()) or time.monotonic() > deadline:
            return infos
        time.sleep(5)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
