"""The cases of the reliability catalogue (bench/reliability_cases.py) that need no cluster: bad input refused
before anything is submitted or written (fast), and damaged files detected and rebuilt (trains: slow).
The cases that submit real jobs are tests/cluster/test_reliability.py's; `bench/reliability.py` runs them all
and prints them as a table.
"""

import pytest

from reliability_cases import CASES, run_case


def _params(needs: str):
    return [pytest.param(case, id=case.name.replace(" ", "_")) for case in CASES if case.needs == needs]


def _check(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result.passed, f"{case.name}: {result.did}\n  " + "\n  ".join(result.problems)


@pytest.mark.parametrize("case", _params("nothing"))
def test_bad_input_is_refused_before_anything_is_submitted_or_written(case, tmp_path):
    _check(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", _params("time"))
def test_damaged_files_are_detected_and_rebuilt(case, tmp_path):
    _check(case, tmp_path)
