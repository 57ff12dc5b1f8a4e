"""The line-by-line read that every format can fall back on, and the tally of rows it could not use.

The file is cut into lines with numpy and parsed a chunk of lines at a time
by the format's own ``parse(chunk)`` (Arrow kernels, numpy tables), so a bad
row's line number is exact whatever blank or broken lines come before it.
Rows that do not parse are counted with their line number, never dropped
silently and never a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdgat.data.frames import Frames, ReadReport
from kdgat.errors import KdgatError

MAX_BAD_EXAMPLES = 5
BLANK = 255  # row code of a blank line: skipped, not bad
CHUNK_LINES = 1 << 17

# parse(chunk of lines) -> (frames, code per row: 0 usable, BLANK, or a reason; describe(i) -> why row i is bad)
Parse = Callable[[pa.Array], "tuple[Frames, np.ndarray, Callable[[int], str]]"]


class Rows:
    """Parsed chunks, plus the count and first examples of the rows that were not usable."""

    def __init__(self) -> None:
        self.parts: list[Frames] = []
        self.bad = 0
        self.examples: list[tuple[int, str]] = []
        self.header_only = False  # a file that has a header and nothing after it says so

    def add(self, chunk: Frames, code: np.ndarray, first_line: int, describe: Callable[[int], str]) -> None:
        """``code`` per row: 0 usable, BLANK skipped, anything else bad (``describe(i)`` says why)."""
        bad = np.flatnonzero((code != 0) & (code != BLANK))
        self.bad += len(bad)
        for i in bad[: max(0, MAX_BAD_EXAMPLES - len(self.examples))]:
            self.examples.append((first_line + int(i), describe(int(i))))
        keep = code == 0
        self.parts.append(chunk if keep.all() else chunk.take(keep))

    def frames(self) -> Frames:
        return self.parts[0] if len(self.parts) == 1 else Frames.concat(self.parts)

    def summary(self) -> str:
        if self.bad:
            line, reason = self.examples[0]
            return f"{self.bad} bad rows; first at line {line}: {reason}"
        return "it has a header and no rows" if self.header_only else "it has no rows"


def frames_and_report(path: Path, fmt: str, rows: Rows) -> tuple[Frames, ReadReport]:
    """What ``read_frames`` returns, from a format's rows; an error if not one row was usable."""
    frames = rows.frames()
    del rows.parts
    # Arrow's allocator keeps freed blocks for reuse; a reader of many large files
    # should not carry the largest file's parsing buffers around.
    pa.default_memory_pool().release_unused()
    if len(frames) == 0:
        raise KdgatError(f"{path}: no usable CAN frames in this {fmt} file ({rows.summary()})")
    report = ReadReport(
        path=str(path),
        format=fmt,
        frames=len(frames),
        injected=int(np.count_nonzero(frames.label)),
        bad_rows=rows.bad,
        bad_examples=list(rows.examples),
    )
    return frames, report


def make_frames(n: int, timestamp=None, can_id=None, dlc=None, payload=None, label=None) -> Frames:
    """Frames owning writable arrays (never read-only views of Arrow or pandas memory); zeros where None."""

    def column(values, dtype, shape):
        return np.zeros(shape, dtype) if values is None else np.array(values, dtype, copy=True)

    return Frames(
        timestamp=column(timestamp, np.float64, n),
        can_id=column(can_id, np.int32, n),
        dlc=column(dlc, np.uint8, n),
        payload=column(payload, np.uint8, (n, 8)),
        label=column(label, np.uint8, n),
    )


def mark(code: np.ndarray, bad: np.ndarray, reason: int) -> None:
    """Give a reason to the bad rows that have none yet, so a row reports its first problem."""
    code[(code == 0) & bad] = reason


def read_by_lines(path: Path, parse: Parse, skip_lines: int = 0) -> Rows:
    """Every line after the first ``skip_lines``, parsed CHUNK_LINES at a time (each trimmed at its right end)."""
    lines = _file_lines(path)
    rows = Rows()
    for start in range(skip_lines, len(lines), CHUNK_LINES):
        chunk = pc.ascii_rtrim_whitespace(lines.slice(start, CHUNK_LINES))
        frames, code, describe = parse(chunk)
        rows.add(frames, code, start + 1, describe)
    if not rows.parts:
        rows.parts.append(Frames.empty())
    return rows


def _file_lines(path: Path) -> pa.Array:
    """The file as one Arrow string per physical line."""
    buf = np.fromfile(path, np.uint8)
    if buf[:3].tobytes() == b"\xef\xbb\xbf":
        buf = buf[3:]
    if len(buf) and buf.max() >= 0x80:
        # No field of any format holds a non-ASCII byte; '?' keeps such a line bad, but valid text.
        buf[buf >= 0x80] = ord("?")
    ends = _line_ends(buf)
    if len(buf) and (len(ends) == 0 or ends[-1] != len(buf) - 1):
        ends = np.append(ends, len(buf) - 1)
    offsets = np.concatenate([[0], ends + 1]).astype(np.int64)
    # Offsets must be contiguous, so each line keeps its terminator; read_by_lines trims it.
    return pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(buf))


def _line_ends(buf: np.ndarray, block: int = 1 << 24) -> np.ndarray:
    """Positions of line terminators ('\n', or a bare '\r' as the CSV parsers take it), a block at a time
    so that no file-sized temporary is made."""
    parts = []
    for start in range(0, len(buf), block):
        part = buf[start : start + block]
        ends = np.flatnonzero(part == ord("\n"))
        cr = np.flatnonzero(part == ord("\r"))
        if len(cr):
            nxt = cr + 1 + start
            bare = cr[(nxt >= len(buf)) | (buf[np.minimum(nxt, len(buf) - 1)] != ord("\n"))]
            ends = np.union1d(ends, bare)
        parts.append(ends + start)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
