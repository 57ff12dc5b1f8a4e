"""The retry policy's rules (no SLURM): what is retried, with how much more, and when not."""

import pytest

from hydra_plugins.kdgat_chain_launcher import PlanError, Resources
from hydra_plugins.kdgat_chain_launcher._plan import Partition
from hydra_plugins.kdgat_chain_launcher._retry import OOM, TIMEOUT, RetryPolicy, bigger, classify, parse_policy

MAIN = Partition("main", True, 7 * 86400, 48, 196608, 2)


@pytest.mark.parametrize("state, signal, log, used, failure", [
    ("OUT_OF_MEMORY", None, "", None, OOM),  # cgroups
    ("FAILED", 9, "slurmstepd: error: Exceeded job memory limit\n", None, OOM),  # OverMemoryKill polling
    ("FAILED", 9, "", 2513.0, OOM),  # the step's MaxRSS above the 2G asked for
    ("FAILED", 9, "killed by someone\n", 1000.0, None),  # a SIGKILL that is not the memory limit
    ("FAILED", None, "Exceeded job memory limit", 2513.0, None),  # no kill: not this job's end
    ("TIMEOUT", 15, "", None, TIMEOUT),
    ("FAILED", None, "Job not requeued because: timed-out too many times.", None, TIMEOUT),  # submitit's last
    ("FAILED", None, "ValueError: bad data", None, None),
    ("CANCELLED", 9, "Exceeded job memory limit", 2513.0, None),
])
def test_only_memory_kills_and_last_timeouts_are_retried(state, signal, log, used, failure):
    assert classify(state, signal, log, used, 2048.0) == failure


def test_memory_grows_by_its_factor_up_to_the_largest_node():
    res = Resources.of(walltime_s=3600, mem_mb=96 * 1024)
    larger, why = bigger(res, OOM, RetryPolicy(), {}, MAIN)
    assert larger.mem == "144G" and why == "144G after OUT_OF_MEMORY at 96G"
    capped, _ = bigger(Resources.of(mem_mb=160 * 1024), OOM, RetryPolicy(), {}, MAIN)
    assert capped.mem == "192G"
    none, why = bigger(Resources.of(mem_mb=192 * 1024), OOM, RetryPolicy(), {}, MAIN)
    assert none is None and why == "192G is already the largest node's memory in partition main"


def test_time_grows_by_its_factor_up_to_the_partition_limit_and_attempts_run_out():
    larger, why = bigger(Resources.of(walltime_s=2 * 3600), TIMEOUT, RetryPolicy(), {}, MAIN)
    assert larger.walltime == "03:00:00" and why == "03:00:00 after TIMEOUT at 02:00:00"
    capped, _ = bigger(Resources.of(walltime_s=6 * 86400), TIMEOUT, RetryPolicy(), {}, MAIN)
    assert capped.walltime == "7-00:00:00"
    none, why = bigger(Resources.of(walltime_s=3600), TIMEOUT, RetryPolicy(), {"timeout": 1}, MAIN)
    assert none is None and why == "no timeout retry left (1 allowed)"
    assert bigger(Resources.of(), OOM, RetryPolicy(oom=0), {}, MAIN)[0] is None


def test_the_policy_merges_the_launchers_and_a_stages_settings_and_refuses_bad_values():
    policy = parse_policy([{"oom": 2, "mem_factor": 1.5, "timeout": 1, "time_factor": 1.5},
                           {"oom": 0, "mem_factor": "???"}], "x")
    assert policy == RetryPolicy(oom=0, timeout=1) and policy.enabled
    assert not parse_policy([{"oom": 0, "timeout": 0}], "x").enabled
    for bad in ({"oom": -1}, {"mem_factor": 1.0}, {"timeout": 1.5}, {"often": 3}):
        with pytest.raises(PlanError):
            parse_policy([bad], "x")
