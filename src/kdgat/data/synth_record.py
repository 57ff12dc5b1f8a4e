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


def write_record(folder: Path, *, like: str, frames: int, seed: int) -> None:
    (Path(folder) / RECORD).write_text(json.dumps({"like": like, "frames": frames, "seed": seed}) + "\n")


def read_record(folder: Path) -> dict[str, Any] | None:
    """The settings a generated folder was made with; None for a folder without a record (one the user put
    there, read like real data)."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    return json.loads(path.read_text())
