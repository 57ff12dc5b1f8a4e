"""What the tests share: kdgat's config composed as train.py composes it, and kdgat run as a user runs it.

The tests are grouped by what they need: `unit/` (pure and fast), `integration/` (processes, training on
tiny data, the local backend) and `cluster/` (real jobs on a SLURM cluster: CI starts
scripts/local-slurm.sh). Running commands and asking SLURM is bench/cluster.py's, which the reliability
benchmark uses too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from cluster import (  # noqa: E402,F401  (re-exported for the tests)
    APP,
    FINAL,
    HAS_SLURM,
    ROOT,
    cancel,
    guards,
    job_ids,
    kdgat,
    run_app,
    run_train,
    scontrol,
    squeue,
    states,
    statuses,
)


def compose(*overrides: str, resolve: bool = True):
    """The job config train.py would run for these command-line overrides."""
    from kdgat.config import compose as kdgat_compose

    return kdgat_compose(list(overrides), resolve=resolve)


def on_slurm(test):
    """Marks a test that submits real jobs: slow, and run where a cluster answers (CI starts one)."""
    for mark in (pytest.mark.slurm, pytest.mark.slow,
                 pytest.mark.skipif(not HAS_SLURM, reason="sbatch is not on PATH: start scripts/local-slurm.sh")):
        test = mark(test)
    return test


@pytest.fixture
def compose_cfg():
    return compose


@pytest.fixture
def torch_probe(tmp_path_factory):
    """Environment for a child process that prints TORCH_IMPORTED=<bool> to stderr when it exits."""
    probe = tmp_path_factory.mktemp("probe")
    (probe / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('TORCH_IMPORTED=%s\\n' % ('torch' in sys.modules)))\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(probe), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture(autouse=True)
def no_guard_left_behind(request):
    """A cluster test that cancels its stage jobs by hand would leave their retry guard to run for nothing on
    the shared cluster: it is cancelled when the test ends."""
    watched = HAS_SLURM and request.node.get_closest_marker("slurm") and "tmp_path" in request.fixturenames
    folder = str(request.getfixturevalue("tmp_path")) if watched else None
    yield
    if folder is None:
        return
    rows = (line.split("|", 2) for line in squeue("-o", "%i|%j|%Z").splitlines() if line.count("|") >= 2)
    cancel([job for job, name, workdir in rows if name.startswith("guard_") and folder in workdir])
