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
PEEK_BYTES = 64 << 10  # where a block's last line end is looked for first
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Block:
    first_line: int  # 1-based number of its first line in the file
    offset: int  # byte offset of data[0] in the file
    data: bytes  # whole lines, each with its terminator (the file's last line may have none)
    lines: int  # how many


def count_lines(data: bytes) -> int:
    """Lines in ``data``: terminators, plus a last line without one."""
    n = count_byte(data, b"\n")
    if b"\r" in data:  # rare; memchr finds out fast
        buf = np.frombuffer(data, np.uint8)
        cr = buf == ord("\r")
        n += int(np.count_nonzero(cr)) - int(np.count_nonzero(cr[:-1] & (buf[1:] == ord("\n"))))
    return n + (1 if data and data[-1:] not in (b"\n", b"\r") else 0)


def count_newline_lines(path: str | os.PathLike) -> int:
    """Lines in a whole file when only '\\n' ends one ('\\r\\n' does, a bare '\\r' does not): a quick check
    of another reader's row count, 256 KiB at a time into one buffer (no memory the size of the file)."""
    buf = bytearray(256 << 10)
    view = np.frombuffer(buf, np.uint8)
    lines, last = 0, b"\n"
    with open(path, "rb", buffering=0) as fh:
        while got := fh.readinto(buf):
            lines += int(np.count_nonzero(view[:got] == ord("\n")))
            last = bytes(buf[got - 1 : got])
    return lines + (last != b"\n")


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
    left out. ``digest`` (a hashlib object), when given, sees every byte of the file.

    Each block is read with one ``pread`` of exactly its bytes, its end found first in the last
    PEEK_BYTES before the block's size: a block's bytes are copied once, not three times (read,
    join with the last block's cut line, cut), which was a third of reading a clean file.
    """
    size = block_bytes or BLOCK_BYTES
    with open(path, "rb") as fh:
        fd = fh.fileno()
        end = os.fstat(fd).st_size
        offset = len(BOM) if os.pread(fd, len(BOM), 0) == BOM else 0
        if digest is not None:
            digest.update(BOM[:offset])
        first_line = 1
        while offset < end:
            skipping = skip_lines > 0  # small reads until the skipped lines (a header) are behind
            data = _next_block(fd, offset, PEEK_BYTES if skipping else size, end)
            if not data:  # the file got shorter while read
                return
            if skipping:
                ends = line_ends(data)
                lines = min(skip_lines, len(ends))
                data = data[: int(ends[lines - 1])]
                skip_lines -= lines
            else:
                lines = count_lines(data)
            if digest is not None:
                digest.update(data)
            if not skipping:
                yield Block(first_line, offset, data, lines)
            offset += len(data)
            first_line += lines


def _next_block(fd: int, offset: int, size: int, end: int) -> bytes:
    """Whole lines from ``offset``: about ``size`` bytes, or more when one line is longer."""
    while True:
        if offset + size >= end:
            return os.pread(fd, end - offset, offset)
        peek = min(PEEK_BYTES, size)
        tail = os.pread(fd, peek, offset + size - peek)
        cut = _cut(tail)
        if cut:
            return os.pread(fd, size - peek + cut, offset)
        size *= 2  # no line ends near the block's end: a longer block
