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
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from kdgat.config import CONF_DIR, prepare_overrides, register_resolvers

    register_resolvers()

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=prepare_overrides(list(overrides)))
    if resolve:
        OmegaConf.resolve(cfg)
    return cfg


def run_train(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a fresh process, as a user would type it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def compose_cfg():
    return compose
