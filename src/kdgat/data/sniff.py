"""A CAN file's format from its first lines, and whether those lines hold a usable frame.

Kept apart from the readers (kdgat.data.formats, which needs numpy, pandas and
Arrow) because the launcher checks every file of a dataset before it submits
anything, and must stay fast: a dataset whose files hold no usable frame is
refused at submit time from each file's first lines; the full check, every
row, is the reader's, in the job.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from kdgat.errors import KdgatError

CTT_COLUMNS = ("timestamp", "arbitration_id", "data_field", "attack")
MAX_CAN_ID = 0x1FFFFFFF  # 29-bit extended identifier
FORMAT_HELP = (
    "can_train_and_test (header 'timestamp,arbitration_id,data_field,attack'), "
    "hcrl_csv (rows 'Timestamp,CAN ID,DLC,DATA0,...,Flag' ending in R or T), "
    "hcrl_log (lines 'Timestamp: ... ID: ... DLC: ... <bytes>')"
)
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 10
_LOG_LINE = re.compile(r"\s*Timestamp:\s*\S+\s+ID:")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_HEX_ID = re.compile(r"^[0-9A-Fa-f]{1,8}$")
_HEX_BYTE = re.compile(r"^[0-9A-Fa-f]{1,2}$")
_PAYLOAD = re.compile(r"^(?:[0-9A-Fa-f]{2}){0,8}$")


def existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise KdgatError(f"CAN data file {path} does not exist")
    if not path.is_file():
        raise KdgatError(f"{path} is not a file (expected a CAN data file)")
    return path


def first_lines(path: Path) -> list[str]:
    """The first non-empty lines of a file (at most SNIFF_LINES, from its first SNIFF_BYTES)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.splitlines()
    if len(head) == SNIFF_BYTES and lines:
        lines.pop()  # probably cut in the middle
    return [line for line in lines if line.strip()][:SNIFF_LINES]


def ctt_header_names(line: str) -> list[str] | None:
    """The header's column names as written, when it names the four columns."""
    names = line.rstrip("\r\n").split(",")
    if set(CTT_COLUMNS) <= {n.strip().lower() for n in names}:
        return names
    return None


def looks_like_hcrl_row(line: str) -> bool:
    parts = line.strip().split(",")
    return len(parts) >= 4 and parts[-1].strip() in ("R", "T") and parts[2].strip().isdigit()


def detect_format(path: str | os.PathLike) -> str:
    """Tell a file's format from its first non-empty lines, never from its name.

    The three formats look nothing alike (a header, rows ending in R/T,
    ``Timestamp:`` lines), so a handful of lines is enough; a stray bad line
    among them must not hide the format, so the majority of lines decides.
    """
    path = existing_file(path)
    lines = first_lines(path)
    if not lines:
        raise KdgatError(f"{path}: the file is empty, so its CAN format is unknown (known formats: {FORMAT_HELP})")
    if ctt_header_names(lines[0]) is not None:
        return "can_train_and_test"
    votes = {
        "hcrl_log": sum(bool(_LOG_LINE.match(line)) for line in lines),
        "hcrl_csv": sum(looks_like_hcrl_row(line) for line in lines),
    }
    best = max(votes, key=votes.get)
    if votes[best] > 0 and 2 * votes[best] >= len(lines):
        return best
    first = lines[0] if len(lines[0]) <= 60 else lines[0][:57] + "..."
    raise KdgatError(f"{path}: unknown CAN file format (first line {first!r}); known formats: {FORMAT_HELP}")


# ---- is a line a usable frame? The readers' rules, one line at a time ---------------------------------

def _can_id(text: str) -> bool:
    return bool(_HEX_ID.match(text)) and int(text, 16) <= MAX_CAN_ID


def _dlc(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 2 and int(text) <= 8 else None


def _ctt_row(line: str, columns: list[int], n_columns: int) -> bool:
    fields = [f.strip() for f in line.split(",")]
    if len(fields) != n_columns:
        return False
    ts, can_id, data, attack = (fields[c] for c in columns)
    return (bool(_FLOAT.match(ts)) and _can_id(can_id) and bool(_PAYLOAD.match(data))
            and bool(_FLOAT.match(attack)) and float(attack) in (0.0, 1.0))


def _hcrl_csv_row(line: str) -> bool:
    fields = line.strip().split(",")
    dlc = _dlc(fields[2]) if len(fields) >= 4 else None
    return (dlc is not None and len(fields) == dlc + 4 and bool(_FLOAT.match(fields[0])) and _can_id(fields[1])
            and fields[-1] in ("R", "T") and all(_HEX_BYTE.match(b) for b in fields[3:-1]))


def _hcrl_log_row(line: str) -> bool:
    words = line.split()
    dlc = _dlc(words[6]) if len(words) >= 7 else None
    return (dlc is not None and len(words) == dlc + 7
            and (words[0], words[2], words[5]) == ("Timestamp:", "ID:", "DLC:")
            and bool(_FLOAT.match(words[1])) and _can_id(words[3]) and all(_HEX_BYTE.match(b) for b in words[7:]))


@functools.lru_cache(maxsize=4096)
def _head_problem(path: str, size: int, mtime_ns: int) -> str | None:
    fmt = detect_format(path)
    lines = first_lines(Path(path))
    if fmt == "can_train_and_test":
        names = [n.strip().lower() for n in ctt_header_names(lines[0])]
        columns = [names.index(c) for c in CTT_COLUMNS]
        usable = any(_ctt_row(line, columns, len(names)) for line in lines[1:])
    else:
        usable = any((_hcrl_csv_row if fmt == "hcrl_csv" else _hcrl_log_row)(line) for line in lines)
    if usable:
        return None
    shown = lines[1 if fmt == "can_train_and_test" else 0] if len(lines) > (fmt == "can_train_and_test") else ""
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return (f"{path}: no usable CAN frame in its first {len(lines)} lines ({fmt}; first row {shown!r}); "
            f"a {fmt} row is like {_EXAMPLE[fmt]!r}")


_EXAMPLE = {
    "can_train_and_test": "1672531200.001234,0C1,00F0A1B2C3D4E5F6,0",
    "hcrl_csv": "1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R",
    "hcrl_log": "Timestamp: 1479121434.850202  ID: 0350  000  DLC: 8  05 28 84 66 6d 00 00 a2",
}


def head_problem(path: str | os.PathLike) -> str | None:
    """Why a CAN file cannot be used, judged from its first lines (unknown format, or not one usable frame
    among them); None when it looks usable. Cached by the file's size and mtime."""
    try:
        st = Path(path).stat()
        return _head_problem(str(path), st.st_size, st.st_mtime_ns)
    except KdgatError as err:
        return str(err)
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror or err})"


def dataset_problem(root: Path) -> str | None:
    """The first reason a dataset folder cannot be used (its layout, or a file whose first lines hold no usable
    frame), or None: the cheap check made before anything is submitted."""
    from kdgat.data.layout import discover

    try:
        layout = discover(root)
    except KdgatError as err:
        return str(err)
    for path in layout.files():
        problem = head_problem(path)
        if problem:
            return problem
    return None
