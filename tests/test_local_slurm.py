"""The local SLURM cluster (scripts/local-slurm.sh) behaves like a real one
where kdgat's chains depend on it: a failed stage cancels the stages after it,
and `sacct` reports both.

CI starts the cluster before the tests; without `sbatch` the test skips.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

DEADLINE_S = 120
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE")


def _run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _sbatch(tmp_path, *args: str) -> str:
    out = _run("sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={tmp_path}/%j.out",
               "--job-name=kdgat-test-local-slurm", "--time=2", *args)
    return out.strip().split(";")[0]  # "id" or "id;cluster"


def _states(job_ids: list[str]) -> dict[str, str]:
    """State of each job according to sacct (allocations only, no steps)."""
    out = _run("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids))
    states = {}
    for line in out.splitlines():
        job_id, _, state = line.partition("|")
        if job_id in job_ids:
            states[job_id] = state.split()[0] if state else ""  # "CANCELLED by 0" -> "CANCELLED"
    return states


def test_failed_stage_cancels_its_dependent(tmp_path):
    if shutil.which("sbatch") is None:
        pytest.skip("sbatch is not on PATH: no SLURM cluster here (start one with scripts/local-slurm.sh start)")

    first = _sbatch(tmp_path, "--wrap", "exit 3")
    second = _sbatch(tmp_path, f"--dependency=afterok:{first}", "--kill-on-invalid-dep=yes", "--wrap", "true")
    ids = [first, second]
    try:
        deadline = time.monotonic() + DEADLINE_S
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = _states(ids)
            if len(states) == 2 and all(s in TERMINAL for s in states.values()):
                break
            time.sleep(1)
        else:
            squeue = subprocess.run(["squeue", "-j", ",".join(ids), "-o", "%i %T %r"],
                                    capture_output=True, text=True).stdout
            pytest.fail(f"jobs {ids} not finished after {DEADLINE_S}s: sacct says {states}, squeue says:\n{squeue}")
        assert states[first] == "FAILED", states
        assert states[second] == "CANCELLED", f"the dependent of a failed job should be cancelled, not {states}"
    finally:
        subprocess.run(["scancel", *ids], capture_output=True)
