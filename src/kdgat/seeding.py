"""One seed for every source of randomness a run touches."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and, when it is loaded, torch (never imported just for this)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = __import__("sys").modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
