"""Parsing a file block by block, and the tally of rows it could not use.

Every block of whole lines (kdgat.data.formats.blocks) goes first to the
format's ``fast`` parser when it has one: pandas' C parser and whole-column
decoding, which gives up (None) at the least doubt. Otherwise, and for
formats without one, the block is cut into lines and parsed a chunk of lines
at a time by the format's exact ``parse(chunk)`` (Arrow kernels, numpy
tables), so a bad row's line number is exact whatever blank or broken lines
come before it. Rows that do not parse are counted with their line number,
never dropped silently and never a crash. Only one block is in memory at a
time, plus the frames kept so far.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdgat.data.formats import blocks as blocks_module
from kdgat.data.frames import Frames, ReadReport
from kdgat.data.threads import in_order
from kdgat.errors import KdgatError

MAX_BAD_EXAMPLES = 5
BLANK = 255  # row code of a blank line: skipped, not bad
CHUNK_LINES = 1 << 17

# parse(chunk of lines) -> (frames, code per row: 0 usable, BLANK, or a reason; describe(i) -> why row i is bad)
Parse = Callable[[pa.Array], "tuple[Frames, np.ndarray, Callable[[int], str]]"]
# fast(block bytes) -> a frame for every line of the block, or None when any line is not a plain good row
Fast = Callable[[bytes], "Frames | None"]


@dataclass
class Parsed:
    """One block of a file, parsed: the frames of its usable rows and what became of each line."""

    first_line: int  # 1-based
    offset: int  # byte offset of the block's first line
    size: int  # its bytes
    frames: Frames  # the usable rows, in file order
    code: np.ndarray  # per line: 0 usable, BLANK, anything else bad
    examples: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) of its first bad rows

    @property
    def bad(self) -> int:
        return int(np.count_nonzero((self.code != 0) & (self.code != BLANK)))


class Rows:
    """Parsed blocks, plus the count and first examples of the rows that were not usable."""

    def __init__(self) -> None:
        self.parts: list[Frames] = []
        self.bad = 0
        self.examples: list[tuple[int, str]] = []
        self.header_only = False  # a file that has a header and nothing after it says so

    @classmethod
    def of(cls, frames: Frames) -> "Rows":
        """The rows of a file whose every line was a usable frame."""
        rows = cls()
        rows.parts.append(frames)
        return rows

    def add(self, parsed: Parsed) -> None:
        self.bad += parsed.bad
        self.examples.extend(parsed.examples[: max(0, MAX_BAD_EXAMPLES - len(self.examples))])
        self.parts.append(parsed.frames)

    def frames(self) -> Frames:
        return self.parts[0] if len(self.parts) == 1 else Frames.concat(self.parts)

    def summary(self) -> str:
        if self.bad:
            line, reason = self.examples[0]
            return f"{self.bad} bad rows; first at line {line}: {reason}"
        return "it has a header and no rows" if self.header_only else "it has no rows"


def collect(parsed: Iterable[Parsed]) -> Rows:
    """Every block's frames and bad rows, kept together (what ``read`` returns)."""
    rows = Rows()
    for part in parsed:
        rows.add(part)
    if not rows.parts:
        rows.parts.append(Frames.empty())
    return rows


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


def parse_file(path: str | os.PathLike, parse: Parse, *, fast: Fast | None = None, skip_lines: int = 0,
               digest=None) -> Iterator[Parsed]:
    """Every line after the first ``skip_lines``, a block at a time (see the module's docstring); the fast
    parser runs ahead on the next blocks in worker threads (kdgat.data.threads)."""
    blocks = blocks_module.read_blocks(path, skip_lines=skip_lines, digest=digest)
    if fast is None:
        yield from (parse_block(block, parse) for block in blocks)
        return
    for block, frames in in_order(lambda b: fast(b.data), blocks):
        if frames is not None and len(frames) == block.lines:
            yield Parsed(block.first_line, block.offset, len(block.data), frames, np.zeros(block.lines, np.uint8))
        else:
            yield parse_block(block, parse)


def parse_block(block: blocks_module.Block, parse: Parse) -> Parsed:
    """The exact parse of one block, CHUNK_LINES lines at a time (each line trimmed at its right end)."""
    lines = _block_lines(block.data)
    parts, codes, examples = [], [], []
    for start in range(0, len(lines), CHUNK_LINES):
        chunk = pc.ascii_rtrim_whitespace(lines.slice(start, CHUNK_LINES))
        frames, code, describe = parse(chunk)
        bad = np.flatnonzero((code != 0) & (code != BLANK))
        for i in bad[: max(0, MAX_BAD_EXAMPLES - len(examples))]:
            examples.append((block.first_line + start + int(i), describe(int(i))))
        keep = code == 0
        parts.append(frames if keep.all() else frames.take(keep))
        codes.append(code)
    frames = Frames.concat(parts)
    code = np.concatenate(codes) if codes else np.zeros(0, np.uint8)
    return Parsed(block.first_line, block.offset, len(block.data), frames, code, examples)


def _block_lines(data: bytes) -> pa.Array:
    """The block as one Arrow string per line (each keeping its terminator, which parse_block trims)."""
    buf = np.frombuffer(data, np.uint8)
    if len(buf) and buf.max() >= 0x80:
        # No field of any format holds a non-ASCII byte; '?' keeps such a line bad, but valid text.
        buf = np.where(buf >= 0x80, np.uint8(ord("?")), buf)
    offsets = np.concatenate([[0], blocks_module.line_ends(data)]).astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(buf))


def read_by_lines(path: Path, parse: Parse, skip_lines: int = 0, fast: Fast | None = None) -> Rows:
    """Every line after the first ``skip_lines``, all kept: what a format's ``read`` returns."""
    return collect(parse_file(path, parse, fast=fast, skip_lines=skip_lines))
