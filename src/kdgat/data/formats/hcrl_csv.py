"""HCRL CSV: no header, rows ``Timestamp,CAN ID,DLC,DATA0,...,DATA(DLC-1),Flag``.

A row is like ``1478198376.389636,0350,2,05,20,T``: as many data fields as
the DLC says, and the flag ``R`` (normal) or ``T`` (injected) last. Read line
by line (kdgat.data.formats.lines); numpy and Arrow are imported inside the
reading and writing functions only, so sniffing stays light.
"""

from __future__ import annotations

from pathlib import Path

from kdgat.data.formats.fields import MAX_CAN_ID, dlc_of, is_can_id, is_hex_byte, is_number

NAME = "hcrl_csv"
HELP = "rows 'Timestamp,CAN ID,DLC,DATA0,...,Flag' ending in R or T"
EXAMPLE = "1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R"


# ---- sniffing --------------------------------------------------------------------------------------


def _looks_like(line: str) -> bool:
    parts = line.strip().split(",")
    return len(parts) >= 4 and parts[-1].strip() in ("R", "T") and parts[2].strip().isdigit()


def sniff(lines: list[str]) -> float:
    """The share of the lines that have this shape (a stray bad line must not hide the format)."""
    return sum(map(_looks_like, lines)) / len(lines)


def head_rows(lines: list[str]) -> tuple[list[str], bool]:
    """Every line is a row; is any a usable frame?"""
    return lines, any(map(_usable, lines))


def _usable(line: str) -> bool:
    fields = line.strip().split(",")
    dlc = dlc_of(fields[2]) if len(fields) >= 4 else None
    return (dlc is not None and len(fields) == dlc + 4 and is_number(fields[0]) and is_can_id(fields[1])
            and fields[-1] in ("R", "T") and all(map(is_hex_byte, fields[3:-1])))


# ---- reading ---------------------------------------------------------------------------------------


def read(path: Path):
    from kdgat.data.formats.lines import read_by_lines

    return read_by_lines(path, _parse)


def _parse(chunk):
    """One chunk of lines (see kdgat.data.formats.lines.Parse)."""
    import numpy as np
    import pyarrow.compute as pc

    from kdgat.data.formats import decode as d
    from kdgat.data.formats.lines import BLANK, make_frames, mark

    n = len(chunk)
    flat, first, count = d.split(pc.split_pattern(chunk, ","))
    code = np.zeros(n, np.uint8)
    mark(code, count < 4, 1)
    dlc_s = d.take(flat, first + 2)
    dlc, ok_dlc = d.parse_int(dlc_s, 10, 2)
    mark(code, ~ok_dlc, 2)
    mark(code, dlc > 8, 3)
    mark(code, count != dlc + 4, 4)
    ts_s, id_s, flag_s = d.take(flat, first), d.take(flat, first + 1), d.take(flat, first + count - 1)
    ts, ok_ts = d.parse_float(ts_s)
    can_id, ok_id = d.parse_int(id_s, 16, 8)
    injected = pc.equal(flag_s, "T").to_numpy(zero_copy_only=False)
    normal = pc.equal(flag_s, "R").to_numpy(zero_copy_only=False)
    mark(code, ~ok_ts, 5)
    mark(code, ~ok_id | (can_id > MAX_CAN_ID), 6)
    mark(code, ~(injected | normal), 7)
    payload, bad_bytes = d.data_bytes(flat, first, dlc, np.flatnonzero(code == 0), skip=3)
    mark(code, bad_bytes, 8)
    code[d.byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        return {
            1: lambda: f"expected at least 4 comma-separated fields, got {count[i]}",
            2: lambda: f"DLC {d.shown(dlc_s, i)} is not a number",
            3: lambda: f"DLC {dlc[i]} is over 8",
            4: lambda: f"DLC {dlc[i]} needs {dlc[i] + 4} fields, got {count[i]}",
            5: lambda: f"timestamp {d.shown(ts_s, i)} is not a number",
            6: lambda: f"CAN ID {d.shown(id_s, i)} is not a hex CAN id",
            7: lambda: f"last field {d.shown(flag_s, i)} is not the flag R or T",
            8: lambda: f"data bytes {','.join(chunk[i].as_py().split(',')[3:-1])!r} are not hex bytes",
        }[int(code[i])]()

    return make_frames(n, ts, can_id, np.minimum(dlc, 8), payload, injected), code, describe


# ---- writing ---------------------------------------------------------------------------------------


def write(frames) -> bytes:
    """A row per frame, lower-case hex as in the real files."""
    from kdgat.data.formats import encode as e

    n = len(frames)
    if n == 0:
        return b""
    return e.squeeze([
        e.timestamp_columns(frames.timestamp), e.const(n, b","),
        e.number_columns(frames.can_id, 16, 4, e.HEX_LOWER), e.const(n, b","),
        e.number_columns(frames.dlc, 10, 1, e.DEC), e.const(n, b","),
        e.payload_columns(frames.payload, frames.dlc, e.HEX_LOWER, b"", b"", after=b","),
        e.flag(frames.label, b"T", b"R"), e.const(n, b"\n"),
    ])  # fmt: skip
