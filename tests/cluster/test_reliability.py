"""The reliability catalogue of issue 7 as tests: one test per case of bench/reliability_cases.py.

Bad input that needs no cluster runs in the fast suite; cases that submit real jobs are marked like every
cluster test (slurm, slow, skipped without sbatch); the damaged-files case trains, so it is slow.
`bench/reliability.py` runs the same cases and prints them as a table.
"""

import pytest

from conftest import on_slurm
from reliability_cases import CASES, run_case


def _params(needs: str):
    return [pytest.param(case, id=case.name.replace(" ", "_")) for case in CASES if case.needs == needs]


def _check(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result.passed, f"{case.name}: {result.did}\n  " + "\n  ".join(result.problems)


@pytest.mark.parametrize("case", _params("nothing"))
def test_bad_input_is_refused_before_anything_is_submitted_or_written(case, tmp_path):
    _check(case, tmp_path)


@on_slurm
@pytest.mark.parametrize("case", _params("cluster"))
def test_on_the_cluster(case, tmp_path):
    _check(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", _params("time"))
def test_damaged_files_are_detected_and_rebuilt(case, tmp_path):
    _check(case, tmp_path)
