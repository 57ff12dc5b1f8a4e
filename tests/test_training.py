"""The training loop's environment rules: threads never above the CPUs this process may use."""

import os

from kdgat.training import usable_cpus


def test_threads_follow_slurm_but_never_exceed_the_cpus_we_may_use(monkeypatch):
    allowed = len(os.sched_getaffinity(0))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert usable_cpus() == allowed
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "48")  # the local cluster grants 48 on a 2-core machine
    assert usable_cpus() == allowed
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert usable_cpus() == 1
