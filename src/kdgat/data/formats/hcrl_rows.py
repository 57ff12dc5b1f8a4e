"""HCRL's comma-separated CAN rows, in the three styles its downloads use (one format module each).

- ``FLAGGED``: ``Timestamp,CAN ID,DLC,DATA0,...,DATA<DLC-1>,Flag``, the flag R (normal) or T (injected):
  the Car-Hacking CSVs and the Survival attack files (kdgat.data.formats.hcrl_csv);
- ``NO_FLAG``: the same without the flag, so every row is normal: Sonata's FreeDriving file of the
  Survival dataset (kdgat.data.formats.hcrl_csv_noflag);
- ``SPACED``: ``Timestamp,CAN ID,DLC,DATA0 DATA1 ...``, the bytes space-separated in one field, no
  flag: Soul's and Spark's FreeDriving files (kdgat.data.formats.hcrl_csv_spaced).

A row is as long as its DLC. Without a flag closing the row, a line cut in
its last byte would look whole, so the unflagged styles want two hex digits
per byte; the flagged style also takes one, as the readers always have.
Only the standard library is imported at the top (sniffing runs in the
launcher); numpy, pandas and Arrow inside the functions that parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdgat.data.formats.fields import MAX_CAN_ID, dlc_of, is_can_id, is_hex_byte, is_number


@dataclass(frozen=True)
class Style:
    flag: bool  # a last field R or T
    spaced: bool  # the data bytes in one field, one space between them
    two_digits: bool  # each byte exactly two hex digits

    @property
    def columns(self) -> int:
        """The most comma-separated fields a row has (DLC 8)."""
        return 4 if self.spaced else 3 + 8 + self.flag


FLAGGED = Style(flag=True, spaced=False, two_digits=False)
NO_FLAG = Style(flag=False, spaced=False, two_digits=True)
SPACED = Style(flag=False, spaced=True, two_digits=True)


# ---- sniffing (standard library only) --------------------------------------------------------------


def _data_fields(fields: list[str], style: Style) -> list[str] | None:
    """The data bytes of a row split into fields, or None if the row does not have this style's shape."""
    dlc = dlc_of(fields[2]) if len(fields) >= 3 else None
    if dlc is None:
        return None
    if style.spaced:
        if len(fields) == 3 and dlc == 0:
            return []
        if len(fields) != 4:
            return None
        items = fields[3].split(" ") if fields[3] else []
    else:
        if len(fields) != dlc + 3 + style.flag or (style.flag and fields[-1] not in ("R", "T")):
            return None
        items = fields[3 : 3 + dlc]
    return items if len(items) == dlc else None


def looks_like(line: str, style: Style) -> bool:
    """The row has this style's shape (field counts, DLC, flag), whatever its values."""
    fields = line.strip().split(",")
    if style.flag:  # as the reader has always sniffed: a stray short row must not hide the format
        return len(fields) >= 4 and fields[-1].strip() in ("R", "T") and fields[2].strip().isdigit()
    items = _data_fields(fields, style)
    return items is not None and (style.spaced or " " not in line.strip())


def usable(line: str, style: Style) -> bool:
    """The row is a usable frame of this style."""
    fields = line.strip().split(",")
    items = _data_fields(fields, style)
    digits = (lambda b: len(b) == 2 and is_hex_byte(b)) if style.two_digits else is_hex_byte
    return (items is not None and is_number(fields[0]) and is_can_id(fields[1]) and all(map(digits, items)))


# ---- the exact parse, line by line ------------------------------------------------------------------


def parse(chunk, style: Style):
    """One chunk of lines (see kdgat.data.formats.lines.Parse)."""
    import numpy as np
    import pyarrow.compute as pc

    from kdgat.data.formats import decode as d
    from kdgat.data.formats.lines import BLANK, make_frames, mark

    n = len(chunk)
    least = 4 if style.flag else 3
    flat, first, count = d.split(pc.split_pattern(chunk, ","))
    code = np.zeros(n, np.uint8)
    mark(code, count < least, 1)
    dlc_s = d.take(flat, first + 2)
    dlc, ok_dlc = d.parse_int(dlc_s, 10, 2)
    mark(code, ~ok_dlc, 2)
    mark(code, dlc > 8, 3)
    wanted = np.where((dlc == 0) & (count == 3), 3, 4) if style.spaced else dlc + least
    mark(code, count != wanted, 4)
    ts_s, id_s, flag_s = d.take(flat, first), d.take(flat, first + 1), d.take(flat, first + count - 1)
    ts, ok_ts = d.parse_float(ts_s)
    can_id, ok_id = d.parse_int(id_s, 16, 8)
    mark(code, ~ok_ts, 5)
    mark(code, ~ok_id | (can_id > MAX_CAN_ID), 6)
    injected = np.zeros(n, bool)
    if style.flag:
        injected = pc.equal(flag_s, "T").to_numpy(zero_copy_only=False)
        normal = pc.equal(flag_s, "R").to_numpy(zero_copy_only=False)
        mark(code, ~(injected | normal), 7)
    items_count = count
    if style.spaced:
        data_s = d.take(flat, first + 3)
        empty = (count == 3) | (d.byte_lengths(data_s) == 0)
        flat, first, items_count = d.split(pc.split_pattern(data_s, " "))
        items_count = np.where(empty, 0, items_count)
        mark(code, items_count != dlc, 9)
    skip = 0 if style.spaced else 3
    payload, bad_bytes = d.data_bytes(flat, first, dlc, np.flatnonzero(code == 0), skip=skip,
                                      two_digits=style.two_digits)
    mark(code, bad_bytes, 8)
    code[d.byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        shape = ("4 comma-separated fields (the data bytes space-separated in the last)" if style.spaced
                 else f"{dlc[i] + least} fields")
        digits = "two-digit hex bytes" if style.two_digits else "hex bytes"

        def data() -> str:
            fields = chunk[i].as_py().split(",")
            return fields[3] if style.spaced else ",".join(fields[3 : 3 + int(dlc[i])])

        return {
            1: lambda: f"expected at least {least} comma-separated fields, got {count[i]}",
            2: lambda: f"DLC {d.shown(dlc_s, i)} is not a number",
            3: lambda: f"DLC {dlc[i]} is over 8",
            4: lambda: f"DLC {dlc[i]} needs {shape}, got {count[i]}",
            5: lambda: f"timestamp {d.shown(ts_s, i)} is not a number",
            6: lambda: f"CAN ID {d.shown(id_s, i)} is not a hex CAN id",
            7: lambda: f"last field {d.shown(flag_s, i)} is not the flag R or T",
            8: lambda: f"data bytes {data()!r} are not {digits}",
            9: lambda: f"DLC {dlc[i]} but {items_count[i]} data bytes",
        }[int(code[i])]()

    return make_frames(n, ts, can_id, np.minimum(dlc, 8), payload, injected), code, describe


# ---- the fast path: a block of plain good rows, column by column -------------------------------------


def fast(data: bytes, style: Style):
    """Frames of every line of ``data`` when each is a plain good row (two-digit bytes, nothing around
    the fields), else None: the caller then parses the block exactly."""
    import numpy as np

    from kdgat.data.formats import decode as d
    from kdgat.data.formats.blocks import count_byte
    from kdgat.data.formats.lines import make_frames
    from kdgat.data.formats.table import text_columns

    columns = text_columns(data, style.columns)
    if columns is None:
        return None
    n = len(columns[0])
    can_id = d.hex_ids(columns[1])
    dlc_text = columns[2]
    if can_id is None or n == 0 or d.byte_lengths(dlc_text).min() != 1:
        return None
    dlc = d.first_bytes(dlc_text).astype(np.int64) - ord("0")
    if dlc.min() < 0 or dlc.max() > 8:
        return None
    fields_per_row = np.full(n, 4) if style.spaced else dlc + 3 + style.flag
    if count_byte(data, b",") != int(fields_per_row.sum()) - n:  # every row exactly as many fields as it needs
        return None
    timestamp = d.float_column(columns[0])
    if timestamp is None:
        return None
    label = np.zeros(n, np.uint8)
    if style.spaced:
        payload, ok = d.spaced_payloads(columns[3], dlc)
        if not ok.all():
            return None
    else:
        payload = np.zeros((n, 8), np.uint8)
        for k in range(8 + style.flag):
            column = columns[3 + k]
            if k < 8:
                values = d.hex_pairs(column)
                if values is None or (values[dlc > k] < 0).any():
                    return None
                payload[:, k] = np.where(dlc > k, values, 0)
            if style.flag:
                here = dlc == k
                if here.any():
                    flag = d.first_bytes(column)[here]
                    if (d.byte_lengths(column)[here] != 1).any() or not np.isin(flag, (ord("R"), ord("T"))).all():
                        return None
                    label[here] = flag == ord("T")
    return make_frames(n, timestamp, can_id, dlc, payload, label)


# ---- writing -----------------------------------------------------------------------------------------


def write(frames, style: Style) -> bytes:
    """A row per frame, lower-case hex as in the real files; ValueError for injected frames in a style
    without a flag."""
    import numpy as np

    from kdgat.data.formats import encode as e

    n = len(frames)
    if not style.flag and n and int(np.count_nonzero(frames.label)):
        raise ValueError(f"rows without a flag hold attack-free traffic only; "
                         f"{int(np.count_nonzero(frames.label))} frames are labelled injected")
    if n == 0:
        return b""
    if style.spaced:
        # the bytes after one comma; a row of DLC 0 ends in that comma
        data = e.payload_columns(frames.payload, frames.dlc, e.HEX_LOWER, b",", b" ")
        empty = np.where(np.asarray(frames.dlc) == 0, ord(","), 0).astype(np.uint8)[:, None]
        data = np.concatenate([data, empty], axis=1)
    else:
        data = e.payload_columns(frames.payload, frames.dlc, e.HEX_LOWER, b",", b",")
    columns = [
        e.timestamp_columns(frames.timestamp), e.const(n, b","),
        e.number_columns(frames.can_id, 16, 4, e.HEX_LOWER), e.const(n, b","),
        e.number_columns(frames.dlc, 10, 1, e.DEC), data,
    ]  # fmt: skip
    if style.flag:
        columns += [e.const(n, b","), e.flag(frames.label, b"T", b"R")]
    return e.squeeze([*columns, e.const(n, b"\n")])


# ---- what each style's format module binds to its style ------------------------------------------------


def sniff(lines: list[str], style: Style) -> float:
    """The share of the lines that have the style's shape (a stray bad line must not hide the format)."""
    return sum(looks_like(line, style) for line in lines) / len(lines)


def head_rows(lines: list[str], style: Style) -> tuple[list[str], bool]:
    """Every line is a row; is any a usable frame?"""
    return lines, any(usable(line, style) for line in lines)


def stream(path, style: Style, digest=None):
    """The file's blocks, parsed (kdgat.data.formats.lines.parse_file)."""
    from functools import partial

    from kdgat.data.formats.lines import parse_file

    return parse_file(path, partial(parse, style=style), fast=partial(fast, style=style), digest=digest)


def read(path, style: Style):
    from kdgat.data.formats.lines import collect

    return collect(stream(path, style))
