"""can-train-and-test: CSV with the header ``timestamp,arbitration_id,data_field,attack``.

A row is like ``1672531200.001234,0C1,00F0A1B2C3D4E5F6,0``: hex id, the
payload's bytes as back-to-back hex digits, attack 0 or 1. The header may
name the columns in any order and add others.

A clean file (up to WHOLE_FILE_BYTES) is parsed by one ``pandas.read_csv``
call, which splits a large local file over all cores, and its hex columns are
decoded with ``binascii`` on threads (the benchmarked path). A file with any
doubt is read a block at a time (kdgat.data.formats.lines): a clean block
through the same pandas and ``binascii`` path, a block with any bad row
again line by line, which names each bad row's line. Files larger than
WHOLE_FILE_BYTES are read by blocks too, in bounded memory.
numpy, pandas and Arrow are imported inside the reading and
writing functions only: sniffing stays light.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from kdgat.data.formats.fields import MAX_CAN_ID, is_can_id, is_hex_payload, is_number
from kdgat.errors import KdgatError

NAME = "can_train_and_test"
PIECE_ROWS = 1 << 17  # rows decoded per thread task
WHOLE_FILE_BYTES = 256 << 20  # a clean file up to this size is parsed in one call (memory: ~3x its frames')
COLUMNS = ("timestamp", "arbitration_id", "data_field", "attack")
HELP = f"header '{','.join(COLUMNS)}'"
EXAMPLE = "1672531200.001234,0C1,00F0A1B2C3D4E5F6,0"


# ---- sniffing --------------------------------------------------------------------------------------


def header_names(line: str) -> list[str] | None:
    """The header's column names as written, when it names the four columns."""
    names = line.rstrip("\r\n").split(",")
    if set(COLUMNS) <= {n.strip().lower() for n in names}:
        return names
    return None


def sniff(lines: list[str]) -> float:
    """1 when the first line is the header: nothing else starts that way."""
    return 1.0 if header_names(lines[0]) is not None else 0.0


def head_rows(lines: list[str]) -> tuple[list[str], bool]:
    """The rows after the header, and whether any is a usable frame."""
    names = [n.strip().lower() for n in header_names(lines[0])]
    columns = [names.index(c) for c in COLUMNS]
    return lines[1:], any(_usable(line, columns, len(names)) for line in lines[1:])


def _usable(line: str, columns: list[int], n_columns: int) -> bool:
    fields = [f.strip() for f in line.split(",")]
    if len(fields) != n_columns:
        return False
    ts, can_id, data, attack = (fields[c] for c in columns)
    return (is_number(ts) and is_can_id(can_id) and is_hex_payload(data)
            and is_number(attack) and float(attack) in (0.0, 1.0))


# ---- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    line: int  # 1-based line number of the header
    names: list[str]  # as written, so pandas' column names match

    def columns(self) -> list[int]:
        """Where the four columns are, in COLUMNS order."""
        lowered = [name.strip().lower() for name in self.names]
        return [lowered.index(name) for name in COLUMNS]

    def ordered(self) -> list[str]:
        """The four columns' names as written, in COLUMNS order."""
        return [self.names[c] for c in self.columns()]


def stream(path: Path, digest=None):
    """The rows after the header, a block at a time: each block through pandas' C parser
    (``_fast``), or line by line when it has any doubt, for exact bad-row reports."""
    from functools import partial

    from kdgat.data.formats import lines

    header = _header(path)
    columns, n_columns = header.columns(), len(header.names)
    fast = partial(_fast, header=header) if n_columns == len(COLUMNS) else None
    return lines.parse_file(path, partial(_parse, columns=columns, n_columns=n_columns), fast=fast,
                            skip_lines=header.line, digest=digest)


def read(path: Path):
    from kdgat.data.formats import lines

    header = _header(path)
    whole = _whole(path, header) if path.stat().st_size <= WHOLE_FILE_BYTES else None
    if whole is not None:
        return lines.Rows.of(whole)
    rows = lines.collect(stream(path))
    rows.header_only = rows.bad == 0
    return rows


def _header(path: Path) -> _Header:
    """The header line; lines end at '\n', '\r\n' or a bare '\r' (universal newlines), as the rows do."""
    with open(path, encoding="utf-8", errors="replace", newline=None) as fh:
        for number, text in enumerate(fh, start=1):
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            names = header_names(text)
            if names is None:
                raise KdgatError(
                    f"{path}: a {NAME} file starts with the header "
                    f"'{','.join(COLUMNS)}', found {text.strip()[:60]!r} at line {number}"
                )
            return _Header(number, names)
    raise KdgatError(f"{path}: no usable CAN frames in this {NAME} file (it has no rows)")


def _whole(path: Path, header: _Header):
    """Every row of a clean file, parsed by one pandas call; None at the least doubt (then the file
    is read a block at a time, which finds and names the bad rows)."""
    if len(header.names) != len(COLUMNS) or _short_rows_pass(header):
        return None
    from concurrent.futures import ThreadPoolExecutor

    from kdgat.data.formats.blocks import count_newline_lines
    from kdgat.data.formats.table import read_table
    from kdgat.data.threads import WORKERS

    # A row for every '\n'-ended line after the header, or the block path reads the file: counted beside
    # pandas' parse, which can count otherwise (blank lines before a header, bare '\r' line ends).
    with ThreadPoolExecutor(1) as pool:
        lines = pool.submit(count_newline_lines, path)
        df = read_table(path, header.names, _dtypes(header), skip_lines=header.line)
        if df is None or len(df) == 0 or len(df) != lines.result() - header.line:
            return None
    return _frames(df, header, WORKERS)


def _fast(data: bytes, header: _Header):
    """A block of clean rows with typed columns; None as soon as anything looks wrong."""
    from kdgat.data.formats.blocks import count_byte
    from kdgat.data.formats.table import read_table

    df = read_table(data, header.names, _dtypes(header))
    if df is None or (_short_rows_pass(header) and count_byte(data, b",") != (len(COLUMNS) - 1) * len(df)):
        return None
    return _frames(df, header, workers=1)


def _short_rows_pass(header: _Header) -> bool:
    """Whether pandas would take a row that lacks its last field: only when that field is the payload,
    where an empty field is a valid empty payload (an empty number or id fails to parse)."""
    return header.columns()[COLUMNS.index("data_field")] == len(header.names) - 1


def _dtypes(header: _Header) -> dict:
    from kdgat.data.formats.table import TEXT

    ts_name, id_name, data_name, attack_name = header.ordered()
    return {ts_name: "float64", id_name: TEXT, data_name: TEXT, attack_name: "int8"}


def _frames(df, header: _Header, workers: int):
    """Frames of a parsed table, or None when a row is not clean. Each piece pandas parsed is checked,
    decoded (hex in one ``binascii`` call per column) and written into the frames on ``workers`` threads:
    the main thread only waits, so copying and first-touching the output is parallel too."""
    import numpy as np
    import pyarrow as pa

    from kdgat.data.formats.decode import hex_ids, hex_payloads
    from kdgat.data.frames import Frames
    from kdgat.data.threads import in_order

    ts_name, id_name, data_name, attack_name = header.ordered()
    n = len(df)
    timestamp, label = df[ts_name].to_numpy(np.float64), df[attack_name].to_numpy(np.int8)
    ids, data = (pa.chunked_array(pa.array(df[name].array)) for name in (id_name, data_name))
    out = Frames(timestamp=np.empty(n, np.float64), can_id=np.empty(n, np.int32), dlc=np.empty(n, np.uint8),
                 payload=np.empty((n, 8), np.uint8), label=np.empty(n, np.uint8))

    def piece(task) -> bool:
        start, id_text, data_text = task
        rows = slice(start, start + len(id_text))
        ts, flag = timestamp[rows], label[rows]
        if not np.isfinite(ts).all() or ((flag != 0) & (flag != 1)).any():
            return False
        can_id, decoded = hex_ids(id_text), hex_payloads(data_text)
        if can_id is None or decoded is None:
            return False
        out.timestamp[rows], out.label[rows], out.can_id[rows] = ts, flag, can_id
        out.payload[rows], out.dlc[rows] = decoded
        return True

    clean = True
    for _, ok in in_order(piece, _pieces(ids, data), workers):
        clean = clean and ok
    return out if clean else None


def _pieces(ids, data) -> list:
    """(first row, ids, payloads) of each piece of rows: the pieces pandas parsed when both columns share
    them (no copy), else PIECE_ROWS rows at a time."""
    lengths = [len(chunk) for chunk in ids.chunks]
    if lengths == [len(chunk) for chunk in data.chunks]:
        return list(zip(itertools.accumulate(lengths, initial=0), ids.chunks, data.chunks))
    return [(start, ids.slice(start, PIECE_ROWS).combine_chunks(), data.slice(start, PIECE_ROWS).combine_chunks())
            for start in range(0, len(ids), PIECE_ROWS)]


def _parse(chunk, columns: list[int], n_columns: int):
    """One chunk of lines (see kdgat.data.formats.lines.Parse); fields may have spaces around them,
    as pandas' parser (the fast path) allows."""
    import numpy as np
    import pyarrow.compute as pc

    from kdgat.data.formats import decode as d
    from kdgat.data.formats.lines import BLANK, make_frames, mark

    n = len(chunk)
    flat, first, count = d.split(pc.split_pattern(chunk, ","))
    code = np.zeros(n, np.uint8)
    mark(code, count != n_columns, 1)
    ts_s, id_s, data_s, attack_s = (
        pc.ascii_trim_whitespace(d.take(flat, first + np.where(count == n_columns, c, 0))) for c in columns
    )
    ts, ok_ts = d.parse_float(ts_s)
    can_id, ok_id = d.parse_int(id_s, 16, 8)
    payload, dlc, ok_data = d.parse_payload(data_s)
    attack, ok_attack = d.parse_float(attack_s)
    mark(code, ~ok_ts, 2)
    mark(code, ~ok_id | (can_id > MAX_CAN_ID), 3)
    mark(code, ~ok_data, 4)
    mark(code, ~ok_attack | ((attack != 0) & (attack != 1)), 5)
    code[d.byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        return {
            1: lambda: f"expected {n_columns} comma-separated fields, got {count[i]}",
            2: lambda: f"timestamp {d.shown(ts_s, i)} is not a number",
            3: lambda: f"arbitration_id {d.shown(id_s, i)} is not a hex CAN id",
            4: lambda: f"data_field {d.shown(data_s, i)} is not 0-8 hex bytes",
            5: lambda: f"attack {d.shown(attack_s, i)} is not 0 or 1",
        }[int(code[i])]()

    label = np.where(ok_attack, attack, 0)
    return make_frames(n, ts, can_id, dlc, payload, label), code, describe


# ---- writing ---------------------------------------------------------------------------------------


def write(frames) -> bytes:
    """The file's text: the header, then a row per frame (upper-case hex, as the real files)."""
    from kdgat.data.formats import encode as e

    header = (",".join(COLUMNS) + "\n").encode()
    n = len(frames)
    if n == 0:
        return header
    return header + e.squeeze([
        e.timestamp_columns(frames.timestamp), e.const(n, b","),
        e.number_columns(frames.can_id, 16, 3, e.HEX_UPPER), e.const(n, b","),
        e.payload_columns(frames.payload, frames.dlc, e.HEX_UPPER, b"", b""), e.const(n, b","),
        e.flag(frames.label, b"1", b"0"), e.const(n, b"\n"),
    ])  # fmt: skip
