"""The local SLURM cluster (scripts/local-slurm.sh) behaves like a real one
where kdgat's chains depend on it: a failed stage cancels the stages after it,
and `sacct` reports both.

CI starts the cluster before the tests; without `sbatch` the test skips.
"""

from __future__ import annotations

import subprocess

from conftest import cancel, on_slurm, states


def _sbatch(tmp_path, *args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={tmp_path}/%j.out",
                          "--job-name=kdgat-test-local-slurm", "--time=2", *args],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return out.strip().split(";")[0]  # "id" or "id;cluster"


@on_slurm
def test_failed_stage_cancels_its_dependent(tmp_path):
    first = _sbatch(tmp_path, "--wrap", "exit 3")
    second = _sbatch(tmp_path, f"--dependency=afterok:{first}", "--kill-on-invalid-dep=yes", "--wrap", "true")
    try:
        found = states([first, second], deadline_s=120)
        assert found[first] == "FAILED", found
        assert found[second] == "CANCELLED", f"the dependent of a failed job should be cancelled, not {found}"
    finally:
        cancel([first, second])
