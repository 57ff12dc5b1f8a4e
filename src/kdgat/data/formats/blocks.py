"""A CAN file as blocks of whole lines, read one after the other: what every reader streams.

A block is a few MiB of the file cut after a line terminator, so a file of
any size is read in bounded memory, and each block knows the number of its
first line and its byte offset: bad rows are reported by line, and the
importer cuts files at a line's end. Line terminators are '\\n', '\\r\\n' or
a bare '\\r', as pandas' C parser takes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

BLOCK_BYTES = 8 << 20
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Block:
    first_line: int  # 1-based number of its first line in the file
    offset: int  # byte offset of data[0] in the file
    data: bytes  # whole lines, each with its terminator (the file's last line may have none)
    lines: int  # how many


def count_lines(data: bytes) -> int:
    """Lines in ``data``: terminators, plus a last line without one."""
    buf = np.frombuffer(data, np.uint8)
    newline = buf == ord("\n")
    n = int(np.count_nonzero(newline))
    cr = buf == ord("\r")
    if cr.any():
        n += int(np.count_nonzero(cr)) - int(np.count_nonzero(cr[:-1] & newline[1:]))
    return n + (1 if data and data[-1:] not in (b"\n", b"\r") else 0)


def count_byte(data: bytes, char: bytes) -> int:
    """How often one byte occurs in ``data`` (numpy counts faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord(char)))


def line_ends(data: bytes) -> np.ndarray:
    """Offset just past each line's terminator (or past the last byte, for a last line without one)."""
    buf = np.frombuffer(data, np.uint8)
    ends = buf == ord("\n")
    cr = buf == ord("\r")
    if cr.any():
        bare = cr.copy()
        bare[:-1] &= ~ends[1:]  # a '\r' followed by '\n' is half of one terminator
        ends |= bare
    out = np.flatnonzero(ends) + 1
    if len(buf) and (len(out) == 0 or out[-1] != len(buf)):
        out = np.append(out, len(buf))
    return out.astype(np.int64)


def _cut(data: bytes) -> int:
    """Where a buffer read so far can be cut so that only whole lines come before (0: not yet)."""
    newline = data.rfind(b"\n")
    if newline >= 0:
        return newline + 1
    # no '\n' at all, so every '\r' is a terminator on its own; the very last byte could still be
    # the first half of '\r\n'
    cr = data.rfind(b"\r", 0, len(data) - 1)
    return cr + 1


def read_blocks(path: str | os.PathLike, *, skip_lines: int = 0, block_bytes: int | None = None,
                digest=None) -> Iterator[Block]:
    """The file's lines after the first ``skip_lines``, a block at a time; a UTF-8 byte-order mark is
    left out. ``digest`` (a hashlib object), when given, sees every byte of the file."""
    size = block_bytes or BLOCK_BYTES
    first_line, offset, rest = 1, 0, b""
    with open(path, "rb") as fh:
        start = True
        while True:
            raw = fh.read(size)
            if digest is not None and raw:
                digest.update(raw)
            if start:
                start = False
                if raw.startswith(BOM):
                    raw, offset = raw[len(BOM):], len(BOM)
            data = rest + raw if rest else raw
            if not raw:  # end of file: what is left is the last line(s)
                cut = len(data)
            else:
                cut = _cut(data)
                if cut == 0:
                    rest = data
                    continue
            whole, rest = data[:cut], data[cut:]
            if skip_lines and whole:
                ends = line_ends(whole)
                skipped = min(skip_lines, len(ends))
                drop = int(ends[skipped - 1])
                whole, skip_lines = whole[drop:], skip_lines - skipped
                offset, first_line = offset + drop, first_line + skipped
            if whole:
                block = Block(first_line, offset, whole, count_lines(whole))
                yield block
                offset += len(whole)
                first_line += block.lines
            if not raw:
                return
