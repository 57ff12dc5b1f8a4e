"""The reliability catalogue on a real cluster: one test per case of bench/reliability_cases.py that
submits real jobs, marked like every cluster test (slurm, slow, skipped without sbatch). The cases that need
no cluster are tests/integration/test_reliability_local.py's; `bench/reliability.py` runs them all and prints
them as a table.
"""

import pytest

from conftest import on_slurm
from reliability_cases import CASES, run_case


def _params(needs: str):
    return [pytest.param(case, id=case.name.replace(" ", "_")) for case in CASES if case.needs == needs]


@on_slurm
@pytest.mark.parametrize("case", _params("cluster"))
def test_on_the_cluster(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result.passed, f"{case.name}: {result.did}\n  " + "\n  ".join(result.problems)
