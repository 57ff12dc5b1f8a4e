"""Shared fixtures: composing kdgat's real config tree the way train.py does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compose(*overrides: str, resolve: bool = True):
    """The job config train.py would run for these command-line overrides."""
    from kdgat.config import compose as kdgat_compose

    return kdgat_compose(list(overrides), resolve=resolve)


def run_train(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a fresh process, as a user would type it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


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
