"""HCRL attack-free text log: ``Timestamp: T  ID: I  000  DLC: D  b0 b1 ...``.

A line is like ``Timestamp: 1479121434.850202        ID: 0350    000    DLC: 8    05 28 84 66 6d 00 00 a2``:
whitespace-separated words at fixed places, then DLC bytes. It has no label
column, so it holds attack-free traffic only. Read a block at a time
(kdgat.data.formats.lines: pandas' C parser for blocks of plain lines, else
line by line); numpy and Arrow are imported inside the reading and writing
functions only, so sniffing stays light.
"""

from __future__ import annotations

import re
from pathlib import Path

from kdgat.data.formats.fields import MAX_CAN_ID, dlc_of, is_can_id, is_hex_byte, is_number

NAME = "hcrl_log"
HELP = "lines 'Timestamp: ... ID: ... DLC: ... <bytes>'"
EXAMPLE = "Timestamp: 1479121434.850202  ID: 0350  000  DLC: 8  05 28 84 66 6d 00 00 a2"
_WORDS = {0: "Timestamp:", 2: "ID:", 5: "DLC:"}  # the fixed words, by place
_LINE = re.compile(r"\s*Timestamp:\s*\S+\s+ID:")


# ---- sniffing --------------------------------------------------------------------------------------


def sniff(lines: list[str]) -> float:
    """The share of the lines that have this shape (a stray bad line must not hide the format)."""
    return sum(bool(_LINE.match(line)) for line in lines) / len(lines)


def head_rows(lines: list[str]) -> tuple[list[str], bool]:
    """Every line is a row; is any a usable frame?"""
    return lines, any(map(_usable, lines))


def _usable(line: str) -> bool:
    words = line.split()
    dlc = dlc_of(words[6]) if len(words) >= 7 else None
    return (dlc is not None and len(words) == dlc + 7 and all(words[k] == w for k, w in _WORDS.items())
            and is_number(words[1]) and is_can_id(words[3]) and all(map(is_hex_byte, words[7:])))


# ---- reading ---------------------------------------------------------------------------------------


def stream(path: Path, digest=None):
    from kdgat.data.formats.lines import parse_file

    return parse_file(path, _parse, fast=_fast, digest=digest)


def read(path: Path):
    from kdgat.data.formats.lines import collect

    return collect(stream(path))


def _parse(chunk):
    """One chunk of lines (see kdgat.data.formats.lines.Parse)."""
    import numpy as np
    import pyarrow.compute as pc

    from kdgat.data.formats import decode as d
    from kdgat.data.formats.lines import BLANK, make_frames, mark

    n = len(chunk)
    # Arrow gives an empty first word for leading spaces: trim them first.
    flat, first, count = d.split(pc.ascii_split_whitespace(pc.ascii_ltrim_whitespace(chunk)))
    shaped = count >= 7
    for k, word in _WORDS.items():
        shaped &= pc.equal(d.take(flat, first + k), word).to_numpy(zero_copy_only=False)
    code = np.zeros(n, np.uint8)
    mark(code, ~shaped, 1)
    ts_s, id_s, dlc_s = d.take(flat, first + 1), d.take(flat, first + 3), d.take(flat, first + 6)
    ts, ok_ts = d.parse_float(ts_s)
    can_id, ok_id = d.parse_int(id_s, 16, 8)
    dlc, ok_dlc = d.parse_int(dlc_s, 10, 2)
    mark(code, ~ok_ts, 2)
    mark(code, ~ok_id | (can_id > MAX_CAN_ID), 3)
    mark(code, ~ok_dlc | (dlc > 8), 4)
    mark(code, count != dlc + 7, 5)
    payload, bad_bytes = d.data_bytes(flat, first, dlc, np.flatnonzero(code == 0), skip=7)
    mark(code, bad_bytes, 6)
    code[d.byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        return {
            1: lambda: "not a 'Timestamp: <t> ID: <id> 000 DLC: <n> <bytes>' line",
            2: lambda: f"timestamp {d.shown(ts_s, i)} is not a number",
            3: lambda: f"ID {d.shown(id_s, i)} is not a hex CAN id",
            4: lambda: f"DLC {d.shown(dlc_s, i)} is not 0..8",
            5: lambda: f"DLC {dlc[i]} but {count[i] - 7} data bytes",
            6: lambda: f"data bytes {' '.join(chunk[i].as_py().split()[7:])!r} are not hex bytes",
        }[int(code[i])]()

    return make_frames(n, ts, can_id, np.minimum(dlc, 8), payload), code, describe


def _fast(data: bytes):
    """Frames of every line of a block of plain good lines (two-digit bytes), else None."""
    import numpy as np
    import pyarrow.compute as pc

    from kdgat.data.formats import decode as d
    from kdgat.data.formats.lines import make_frames
    from kdgat.data.formats.table import text_columns

    words = text_columns(data, 7 + 8, sep=r"\s+")
    if words is None or len(words[0]) == 0:
        return None
    for k, word in _WORDS.items():
        if not pc.all(pc.equal(words[k], word)).as_py():
            return None
    n = len(words[0])
    dlc_text = words[6]
    can_id = d.hex_ids(words[3])
    if can_id is None or d.byte_lengths(dlc_text).max() != 1 or d.byte_lengths(dlc_text).min() != 1:
        return None
    dlc = d.first_bytes(dlc_text).astype(np.int64) - ord("0")
    if dlc.min() < 0 or dlc.max() > 8:
        return None
    payload = np.zeros((n, 8), np.uint8)
    for k in range(8):
        values = d.hex_pairs(words[7 + k])
        present = dlc > k
        # a byte where the DLC says one, nothing after the last
        if values is None or (values[present] < 0).any() or (d.byte_lengths(words[7 + k])[~present] != 0).any():
            return None
        payload[:, k] = np.where(present, values, 0)
    timestamp = d.float_column(words[1])
    return None if timestamp is None else make_frames(n, timestamp, can_id, dlc, payload)


# ---- writing ---------------------------------------------------------------------------------------


def write(frames) -> bytes:
    """A line per frame, spaced as the real log; ValueError for injected frames (the log cannot hold them)."""
    from kdgat.data.formats import encode as e

    injected = int(frames.label.sum()) if len(frames) else 0
    if injected:
        raise ValueError(f"the {NAME} format holds attack-free traffic only; {injected} frames are labelled injected")
    n = len(frames)
    if n == 0:
        return b""
    return e.squeeze([
        e.const(n, b"Timestamp: "), e.timestamp_columns(frames.timestamp),
        e.const(n, b"        ID: "), e.number_columns(frames.can_id, 16, 4, e.HEX_LOWER),
        e.const(n, b"    000    DLC: "), e.number_columns(frames.dlc, 10, 1, e.DEC),
        e.payload_columns(frames.payload, frames.dlc, e.HEX_LOWER, b"    ", b" "), e.const(n, b"\n"),
    ])  # fmt: skip
