"""The artifact authority: every path kdgat reads or writes under `paths.*` is computed here.

Paths are absolute, so that a job started elsewhere (a SLURM node, a Hydra
output directory) reads what the submitting command meant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def absolute(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def dataset_dir(cfg: Any) -> Path:
    """The raw dataset folder (train_*/test_0N_<scenario>) of the composed config."""
    return absolute(cfg.dataset.path)


def artifacts_root(cfg: Any) -> Path:
    return absolute(cfg.paths.artifacts)


def cache_dir(cfg: Any) -> Path:
    """Processed graphs, vocabulary and split of the dataset, shared by every stage."""
    return artifacts_root(cfg) / "cache" / cfg.dataset.name
