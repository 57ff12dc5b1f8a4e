"""Pure rules of the retry policy: which failure is retried, with how much more, and when not.

A stage killed for memory is retried with `mem_factor` times the memory (at most
`oom` times); a stage that reached its walltime once more than its requeues
allow is retried with `time_factor` times the walltime (at most `timeout`
times); nothing else is retried (a stage that raises fails the same way
again). Never beyond what the partition can run: the largest node's memory,
the partition's time limit. The guard jobs that apply the rules are _guard.py.
"""

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple

from hydra_plugins.kdgat_chain_launcher._errors import PlanError
from hydra_plugins.kdgat_chain_launcher._plan import Partition
from hydra_plugins.kdgat_chain_launcher._resources import Resources
from hydra_plugins.kdgat_chain_launcher._units import format_memory, format_walltime

OOM, TIMEOUT = "oom", "timeout"
# What slurmstepd writes into a job's log when the accounting poll (OverMemoryKill) kills it.
MEMORY_KILL_LINE = "Exceeded job memory limit"
# What submitit writes when a job reached its walltime after its last allowed requeue.
LAST_TIMEOUT_LINE = "timed-out too many times"


@dataclass(frozen=True)
class RetryPolicy:
    oom: int = 2
    mem_factor: float = 1.5
    timeout: int = 1
    time_factor: float = 1.5

    @property
    def enabled(self) -> bool:
        return self.oom > 0 or self.timeout > 0


def parse_policy(levels: Sequence[Optional[Mapping[str, Any]]], where: str) -> RetryPolicy:
    """The policy from its levels, lowest first (the launcher's, then a stage's `resources.retry`)."""
    merged: dict = {}
    for level in levels:
        merged.update({k: v for k, v in (level or {}).items() if v != "???"})
    unknown = set(merged) - {"oom", "mem_factor", "timeout", "time_factor"}
    if unknown:
        raise PlanError(f"{where} has no setting {', '.join(sorted(unknown))}; use oom, mem_factor, timeout, "
                        "time_factor")
    policy = RetryPolicy(**merged)
    for name in ("oom", "timeout"):
        value = getattr(policy, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PlanError(f"{where}.{name}={value!r} must be a whole number of attempts >= 0")
    for name in ("mem_factor", "time_factor"):
        value = getattr(policy, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 1:
            raise PlanError(f"{where}.{name}={value!r} must be a number > 1")
    return policy


def classify(state: str, signal: Optional[int], log: str, used_mb: Optional[float] = None,
             request_mb: Optional[float] = None) -> Optional[str]:
    """Why a job failed, when that is retried: OOM or TIMEOUT; None for anything else.

    A memory kill is OUT_OF_MEMORY where SLURM uses cgroups; where it polls (OverMemoryKill) the job is
    FAILED, a step of it killed by signal 9, with slurmstepd's "Exceeded job memory limit" in the log or
    the step's MaxRSS above the request. A last timeout is TIMEOUT, or FAILED with submitit's "timed-out
    too many times" (it raised after the last requeue). A cancel never is.
    """
    if state == "OUT_OF_MEMORY":
        return OOM
    over = used_mb is not None and request_mb is not None and used_mb > request_mb
    if state == "FAILED" and signal == 9 and (MEMORY_KILL_LINE in log or over):
        return OOM
    if state == "TIMEOUT" or (state == "FAILED" and LAST_TIMEOUT_LINE in log):
        return TIMEOUT
    return None


def bigger(resources: Resources, failure: str, policy: RetryPolicy, done: Mapping[str, int],
           partition: Optional[Partition]) -> Tuple[Optional[Resources], str]:
    """The next attempt's request after `failure`, or None with the reason there is none."""
    allowed, factor = (policy.oom, policy.mem_factor) if failure == OOM else (policy.timeout, policy.time_factor)
    if done.get(failure, 0) >= allowed:
        return None, f"no {failure} retry left ({allowed} allowed)"
    values = dict(resources.values)
    if failure == OOM:
        wanted = int(math.ceil(resources.mem_mb * factor))
        cap = partition.mem_mb if partition is not None and partition.mem_mb else None
        if cap is not None and resources.mem_mb >= cap:
            return None, f"{resources.mem} is already the largest node's memory in partition {partition.name}"
        values["mem"] = min(wanted, cap) if cap is not None else wanted
        return Resources(values, resources.sbatch), f"{format_memory(values['mem'])} after OUT_OF_MEMORY at " \
                                                   f"{resources.mem}"
    wanted = int(math.ceil(resources.walltime_s * factor / 60) * 60)
    cap = partition.max_time_s if partition is not None else None
    if cap is not None and resources.walltime_s >= cap:
        return None, f"{resources.walltime} is already partition {partition.name}'s time limit"
    values["walltime"] = min(wanted, cap) if cap is not None else wanted
    return Resources(values, resources.sbatch), f"{format_walltime(values['walltime'])} after TIMEOUT at " \
                                               f"{resources.walltime}"


def partition_of(name: Optional[str], partitions: Sequence[Partition]) -> Optional[Partition]:
    """The partition a job runs in: the one named, else the default."""
    for p in partitions:
        if (name is None and p.default) or p.name == name:
            return p
    return None

