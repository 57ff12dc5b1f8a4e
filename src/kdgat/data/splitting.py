"""A CAN file cut in two at a frame count, streamed: how an import splits a download that has no split.

The first pass parses the file a block at a time (kdgat.data.formats.scan)
and keeps a byte per line (what became of it) and a byte per frame (its
label): a few MiB for a file of any size. The cut is at the end of the line
holding the last frame of the first part. The second pass only copies
bytes: the file up to the cut, then the lines before its first row (a
header, if the format has one) and the rest. The two parts hold the
source's lines byte for byte, bad ones included, so their counts add up to
the source's and ``kdgat data info`` finds the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kdgat.data.formats import detect_format, scan
from kdgat.data.formats.blocks import line_ends
from kdgat.data.formats.lines import BLANK
from kdgat.errors import KdgatError

COPY_BYTES = 8 << 20


@dataclass(frozen=True)
class Counts:
    frames: int
    injected: int
    bad_rows: int


@dataclass(frozen=True)
class Cut:
    """Where a file is cut, and what each part holds."""

    format: str
    sha256: str  # of the whole source file
    head_end: int  # the bytes before the first row (a header), repeated at the start of the second part
    at: int  # byte offset: the first part is [0, at), the second head + [at, end)
    lines: int  # the first part's lines (after the head)
    first: Counts
    second: Counts


def find_cut(path: Path, fraction: float) -> Cut:
    """Where the first ``fraction`` of the file's usable frames end (at least one frame on each side)."""
    fmt = detect_format(path)
    digest = hashlib.sha256()
    places, codes, labels = [], [], []
    for part in scan(path, fmt, digest=digest):
        places.append((part.offset, part.size))
        codes.append(part.code)
        labels.append(np.array(part.frames.label, np.uint8))
    total = sum(len(label) for label in labels)
    keep = int(total * fraction)
    if keep < 1 or keep >= total:
        raise KdgatError(f"{path}: {total} usable frames cannot be cut {fraction:.0%} / {1 - fraction:.0%} "
                         f"with a frame on each side")
    usable_before = np.cumsum([0] + [len(label) for label in labels])
    block = int(np.searchsorted(usable_before, keep, side="left")) - 1  # the block holding frame number `keep`
    line = int(np.flatnonzero(codes[block] == 0)[keep - usable_before[block] - 1])
    offset, size = places[block]
    with open(path, "rb") as fh:
        fh.seek(offset)
        at = offset + int(line_ends(fh.read(size))[line])
    code = np.concatenate(codes)
    lines_before = sum(len(c) for c in codes[:block]) + line + 1
    label = np.concatenate(labels)
    bad = (code != 0) & (code != BLANK)
    first = Counts(keep, int(label[:keep].sum()), int(bad[:lines_before].sum()))
    second = Counts(total - keep, int(label[keep:].sum()), int(bad[lines_before:].sum()))
    return Cut(fmt, digest.hexdigest(), places[0][0], at, lines_before, first, second)


def copy_bytes(path: Path, start: int, end: int | None, out: BinaryIO, digest) -> None:
    """Bytes [start, end) of a file (to its end for None) into ``out``, seen by ``digest`` on the way."""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            block = fh.read(COPY_BYTES if left is None else min(COPY_BYTES, left))
            if not block:
                break
            digest.update(block)
            out.write(block)
            if left is not None:
                left -= len(block)


def write_first(path: Path, cut: Cut, out: BinaryIO, digest) -> None:
    copy_bytes(path, 0, cut.at, out, digest)


def write_second(path: Path, cut: Cut, out: BinaryIO, digest) -> None:
    copy_bytes(path, 0, cut.head_end, out, digest)
    copy_bytes(path, cut.at, None, out, digest)
