"""The record a generated (synthetic) dataset folder keeps of the settings it was made with.

Written by kdgat.data.synth, read by kdgat.data.locate to notice a folder
made with other settings. Light on purpose (no numpy): the launcher reads it
before it submits anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORD = "synthetic.json"
# Bumped when the same settings make other traffic, so that a folder made by an older generator is noticed
# instead of trained on as if it were the new data. 2: each `like` name its own vehicle and seed, and
# spoofing bursts that take the vehicle's spoofing targets in turn (1: kdgat before issue 16).
GENERATOR = 2


def write_record(folder: Path, *, like: str, frames: int, seed: int) -> None:
    record = {"like": like, "frames": frames, "seed": seed, "generator": GENERATOR}
    (Path(folder) / RECORD).write_text(json.dumps(record) + "\n")


def read_record(folder: Path) -> dict[str, Any] | None:
    """The settings a generated folder was made with; None for a folder without a record (one the user put
    there, read like real data)."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    return {"generator": 1, **json.loads(path.read_text())}  # records of version 1 did not say
