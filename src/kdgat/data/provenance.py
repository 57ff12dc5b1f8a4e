"""``import.json``: where an imported dataset folder came from, so that ``kdgat data info`` can say so.

Written by ``kdgat data import`` (kdgat.data.importer) into the dataset
folder: the download's path and kind, each file's sha256 and where it came
from, the split made and what was left out. It holds no time of day, so a
second import of the same download writes the same bytes (and then does not
write at all).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdgat.atomic import write_text_atomic

IMPORT_FILE = "import.json"
VERSION = 1


def read_record(folder: Path) -> dict[str, Any] | None:
    """The dataset folder's import record, or None when it was not imported (or the record is unreadable)."""
    try:
        record = json.loads((Path(folder) / IMPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("kdgat_import") == VERSION else None


def render(record: dict[str, Any]) -> str:
    return json.dumps({"kdgat_import": VERSION, **record}, indent=2, sort_keys=True) + "\n"


def write_record(folder: Path, record: dict[str, Any]) -> bool:
    """Write the record unless the folder already holds the same; True when it wrote."""
    path = Path(folder) / IMPORT_FILE
    text = render(record)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    write_text_atomic(path, text)
    return True


def describe(record: dict[str, Any]) -> list[str]:
    """What ``kdgat data info`` says of an imported folder, a line each."""
    lines = [f"imported by kdgat data import from {record['title']}: {record['source']}"]
    if record.get("split"):
        lines.append(f"split made by the import: {record['split']['rule']}")
    hows: dict[str, int] = {}
    for entry in record.get("files", {}).values():
        hows[entry["how"]] = hows.get(entry["how"], 0) + 1
    lines.append("files: " + ", ".join(f"{n} {how}" for how, n in sorted(hows.items())))
    for name, why in sorted(record.get("left_out", {}).items()):
        lines.append(f"left out: {name} ({why})")
    return lines
