"""Readers and writers for the three real CAN file formats (SPEC §3).

- ``can_train_and_test``: CSV with header ``timestamp,arbitration_id,data_field,attack``,
  e.g. ``1672531200.001234,0C1,00F0A1B2C3D4E5F6,0``.
- ``hcrl_csv``: HCRL CSV without header, ``Timestamp,CAN ID,DLC,DATA0..DATA(DLC-1),Flag``
  with as many data fields as the DLC says and the flag ``R``/``T`` last,
  e.g. ``1478198376.389636,0350,2,05,20,T``.
- ``hcrl_log``: HCRL attack-free text log,
  ``Timestamp: 1479121434.850202        ID: 0350    000    DLC: 8    05 28 84 66 6d 00 00 a2``.

Files hold millions of frames, so nothing here loops over rows in Python.
A clean can-train-and-test file goes through pandas' C parser and
``binascii`` (the benchmarked path); everything else, and any file with a bad
row, is cut into lines with numpy and decoded chunk by chunk with Arrow
kernels and numpy lookup tables, which knows each row's line number. Rows
that do not parse are counted in the ``ReadReport`` with their line number,
never dropped silently and never a crash.
"""

from __future__ import annotations

import binascii
import csv
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kdgat.data.frames import Frames, ReadReport
# Telling the format from a file's first lines is light, and the launcher needs it: it lives in sniff.
from kdgat.data.sniff import CTT_COLUMNS, MAX_CAN_ID, ctt_header_names, detect_format, existing_file
from kdgat.errors import KdgatError

FORMATS = ("can_train_and_test", "hcrl_csv", "hcrl_log")

MAX_BAD_EXAMPLES = 5


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def write_frames(path: str | os.PathLike, frames: Frames, fmt: str) -> None:
    """Write frames in one real format, atomically (temp file, then rename).

    The text is assembled as one byte matrix (a row per frame, NUL where a
    variable-width field is shorter than its column) and the NULs are then
    squeezed out, so a million frames take well under a second.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown CAN file format {fmt!r}; known: {', '.join(FORMATS)}")
    _check_can_write(frames, fmt)
    if fmt == "can_train_and_test":
        text = (",".join(CTT_COLUMNS) + "\n").encode() + _rows_ctt(frames)
    elif fmt == "hcrl_csv":
        text = _rows_hcrl_csv(frames)
    else:
        text = _rows_hcrl_log(frames)
    _atomic_write(Path(path), text)


def _check_can_write(frames: Frames, fmt: str) -> None:
    n = len(frames)
    if n == 0:
        return
    if not np.all(np.isfinite(frames.timestamp)):
        raise ValueError("cannot write frames with NaN or infinite timestamps")
    can_id = np.asarray(frames.can_id, np.int64)
    if can_id.min() < 0 or can_id.max() > MAX_CAN_ID:
        raise ValueError(f"CAN ids must be in 0..0x{MAX_CAN_ID:X}")
    if np.asarray(frames.dlc).max() > 8:
        raise ValueError("DLC must be 0..8")
    label = np.asarray(frames.label)
    if not np.isin(label, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if fmt == "hcrl_log" and label.any():
        raise ValueError(
            f"the hcrl_log format holds attack-free traffic only; {int(label.sum())} frames are labelled injected"
        )


def _atomic_write(path: Path, data: bytes) -> None:
    # O_EXCL on a unique hidden name: no clash with a concurrent writer, and the
    # file gets the usual umask-based mode (mkstemp would force 0600).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_DEC = np.frombuffer(b"0123456789", np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", np.uint8)
_HEX_LOWER = np.frombuffer(b"0123456789abcdef", np.uint8)


def _const(n: int, text: bytes) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text, np.uint8), (n, len(text)))


def _number_columns(values: np.ndarray, base: int, min_width: int, alphabet: np.ndarray) -> np.ndarray:
    """Digits of non-negative ints, right-aligned; leading zeros beyond min_width are NUL."""
    values = np.asarray(values, np.uint64)
    n = len(values)
    top = int(values.max()) if n else 0
    width = max(min_width, _n_digits(top, base))
    out = np.zeros((n, width), np.uint8)
    ndig = np.ones(n, np.int64)
    for k in range(1, width):
        ndig += values >= np.uint64(base**k)
    ndig = np.maximum(ndig, min_width)
    rest = values.copy()
    for k in range(width - 1, -1, -1):
        out[:, k] = alphabet[(rest % np.uint64(base)).astype(np.intp)]
        rest //= np.uint64(base)
    out[np.arange(width)[None, :] < (width - ndig)[:, None]] = 0
    return out


def _n_digits(value: int, base: int) -> int:
    digits = 1
    while value >= base:
        value //= base
        digits += 1
    return digits


def _timestamp_columns(ts: np.ndarray) -> np.ndarray:
    """``[-]int.ffffff`` with exactly six decimals, the precision of every real capture."""
    micros = np.rint(np.asarray(ts, np.float64) * 1e6).astype(np.int64)
    negative = micros < 0
    micros = np.abs(micros)
    sign = np.where(negative, ord("-"), 0).astype(np.uint8)[:, None]
    whole = _number_columns(micros // 1_000_000, 10, 1, _DEC)
    frac = _number_columns(micros % 1_000_000, 10, 6, _DEC)
    n = len(micros)
    return np.concatenate([sign, whole, _const(n, b"."), frac], axis=1)


def _payload_columns(payload: np.ndarray, dlc: np.ndarray, alphabet: np.ndarray, before: bytes, between: bytes,
                     after: bytes = b"") -> np.ndarray:
    """Hex bytes up to the DLC, as ``before + b0 + between + b1 ... + after`` per present byte."""
    payload = np.asarray(payload, np.uint8)
    n = len(payload)
    hi = alphabet[payload >> 4]
    lo = alphabet[payload & 15]
    present = np.arange(8)[None, :] < np.asarray(dlc)[:, None]
    blocks = []
    for j in range(8):
        sep = before if j == 0 else between
        parts = [_const(n, sep)] if sep else []
        parts += [hi[:, j : j + 1], lo[:, j : j + 1]]
        if after:
            parts.append(_const(n, after))
        block = np.concatenate(parts, axis=1)
        block = np.where(present[:, j : j + 1], block, 0).astype(np.uint8)
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def _squeeze(matrix: np.ndarray) -> bytes:
    flat = matrix.ravel()
    return flat[flat != 0].tobytes()


def _rows_ctt(f: Frames) -> bytes:
    n = len(f)
    if n == 0:
        return b""
    label = np.where(np.asarray(f.label) == 1, ord("1"), ord("0")).astype(np.uint8)[:, None]
    return _squeeze(
        np.concatenate(
            [
                _timestamp_columns(f.timestamp),
                _const(n, b","),
                _number_columns(f.can_id, 16, 3, _HEX_UPPER),
                _const(n, b","),
                _payload_columns(f.payload, f.dlc, _HEX_UPPER, b"", b""),
                _const(n, b","),
                label,
                _const(n, b"\n"),
            ],
            axis=1,
        )
    )


def _rows_hcrl_csv(f: Frames) -> bytes:
    n = len(f)
    if n == 0:
        return b""
    flag = np.where(np.asarray(f.label) == 1, ord("T"), ord("R")).astype(np.uint8)[:, None]
    return _squeeze(
        np.concatenate(
            [
                _timestamp_columns(f.timestamp),
                _const(n, b","),
                _number_columns(f.can_id, 16, 4, _HEX_LOWER),
                _const(n, b","),
                _number_columns(f.dlc, 10, 1, _DEC),
                _const(n, b","),
                _payload_columns(f.payload, f.dlc, _HEX_LOWER, b"", b"", after=b","),
                flag,
                _const(n, b"\n"),
            ],
            axis=1,
        )
    )


def _rows_hcrl_log(f: Frames) -> bytes:
    n = len(f)
    if n == 0:
        return b""
    return _squeeze(
        np.concatenate(
            [
                _const(n, b"Timestamp: "),
                _timestamp_columns(f.timestamp),
                _const(n, b"        ID: "),
                _number_columns(f.can_id, 16, 4, _HEX_LOWER),
                _const(n, b"    000    DLC: "),
                _number_columns(f.dlc, 10, 1, _DEC),
                _payload_columns(f.payload, f.dlc, _HEX_LOWER, b"    ", b" "),
                _const(n, b"\n"),
            ],
            axis=1,
        )
    )


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def read_frames(path: str | os.PathLike, fmt: str | None = None) -> tuple[Frames, ReadReport]:
    """Read one CAN file into Frames (in file order) and a report of the rows it could not use.

    ``fmt=None`` detects the format from the file's first lines.
    """
    path = existing_file(path)
    if fmt is None:
        fmt = detect_format(path)
    elif fmt not in FORMATS:
        raise KdgatError(f"unknown CAN file format {fmt!r} for {path}; known formats: {', '.join(FORMATS)}")
    if fmt == "can_train_and_test":
        rows = _read_ctt(path)
    elif fmt == "hcrl_csv":
        rows = _read_by_lines(path, _parse_hcrl_csv)
    else:
        rows = _read_by_lines(path, _parse_hcrl_log)
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


BLANK = 255  # row code of a blank line: skipped, not bad


class _Rows:
    """Parsed chunks, plus the count and first examples of the rows that were not usable."""

    def __init__(self) -> None:
        self.parts: list[Frames] = []
        self.bad = 0
        self.examples: list[tuple[int, str]] = []
        self.header_only = False

    def add(self, chunk: Frames, code: np.ndarray, first_line: int, describe) -> None:
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


def _make_frames(n: int, timestamp=None, can_id=None, dlc=None, payload=None, label=None) -> Frames:
    """Frames owning writable arrays (never read-only views of Arrow or pandas memory)."""

    def column(values, dtype, shape):
        return np.zeros(shape, dtype) if values is None else np.array(values, dtype, copy=True)

    return Frames(
        timestamp=column(timestamp, np.float64, n),
        can_id=column(can_id, np.int32, n),
        dlc=column(dlc, np.uint8, n),
        payload=column(payload, np.uint8, (n, 8)),
        label=column(label, np.uint8, n),
    )


# ---- field decoders: Arrow strings in, numpy values and a per-row "ok" out ----

_HEX_VALUE = np.full(256, -1, np.int8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_DEC_VALUE = np.where(_HEX_VALUE < 10, _HEX_VALUE, -1).astype(np.int8)


def _pair_table() -> np.ndarray:
    """Byte value of every two-character hex pair (-1 if not hex), indexed by the pair as a native uint16."""
    chars = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    hi = _HEX_VALUE[chars[:, 0]].astype(np.int16)
    lo = _HEX_VALUE[chars[:, 1]].astype(np.int16)
    return np.where((hi >= 0) & (lo >= 0), hi * 16 + lo, -1).astype(np.int16)


_HEX_PAIR = _pair_table()
_FLOAT_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def _byte_lengths(arr: pa.Array) -> np.ndarray:
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
    if arr.null_count:
        lengths = np.where(arr.is_valid().to_numpy(zero_copy_only=False), lengths, 0)
    return lengths.astype(np.int64)


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, memoryview]:
    """Each string's byte length, and all the strings' bytes back to back, without copying."""
    _, offsets, data = arr.buffers()[:3]
    offset_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offs = np.frombuffer(offsets, offset_type)[arr.offset : arr.offset + len(arr) + 1]
    raw = memoryview(data if data is not None else b"")[int(offs[0]) : int(offs[-1])]
    return np.diff(offs), raw


def _fixed_width(arr: pa.Array, width: int, right_align: bool) -> np.ndarray:
    """The strings as an (N, width) byte matrix, padded with '0'; none may be longer than width."""
    if len(arr) == 0:
        return np.zeros((0, width), np.uint8)
    if arr.null_count:
        arr = arr.fill_null("")
    lengths, raw = _string_buffers(arr)
    if (lengths != width).any():
        # ascii_* pads by bytes, so any byte string ends exactly `width` long
        arr = (pc.ascii_lpad if right_align else pc.ascii_rpad)(arr, width=width, padding="0")
        lengths, raw = _string_buffers(arr)
    return np.frombuffer(raw, np.uint8).reshape(len(arr), width)


def _keep_only(arr: pa.Array, ok: np.ndarray, fill: str) -> pa.Array:
    return arr if ok.all() else pc.if_else(pa.array(ok), arr, fill)


def _parse_int(arr: pa.Array, base: int, max_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned ints of 1..max_digits digits in base 10 or 16."""
    lengths = _byte_lengths(arr)
    ok = (lengths >= 1) & (lengths <= max_digits)
    arr = _keep_only(arr, ok, "0")
    width = int(np.where(ok, lengths, 1).max(initial=1))
    digits = (_HEX_VALUE if base == 16 else _DEC_VALUE)[_fixed_width(arr, width, right_align=True)]
    ok &= (digits >= 0).all(axis=1)
    values = np.zeros(len(arr), np.int64)
    for k in range(width):
        values = values * base + digits[:, k]
    values[~ok] = 0
    return values, ok


def _parse_payload(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0..8 bytes as 0..16 hex digits: (payload (N, 8), zero past the DLC; dlc; ok)."""
    lengths = _byte_lengths(arr)
    ok = (lengths <= 16) & (lengths % 2 == 0)
    arr = _keep_only(arr, ok, "")
    pairs = _HEX_PAIR[_fixed_width(arr, 16, right_align=False).view(np.uint16)]
    ok &= (pairs >= 0).all(axis=1)
    payload = np.where(ok[:, None], pairs, 0).astype(np.uint8)
    return payload, np.where(ok, lengths // 2, 0), ok


def _parse_float(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if arr.null_count:
        arr = arr.fill_null("")
    try:
        values = pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:  # some value is not a number: find which, then cast the rest
        valid = pc.match_substring_regex(arr, _FLOAT_TEXT)
        values = pc.cast(pc.if_else(valid, arr, "nan"), pa.float64())
    values = values.to_numpy(zero_copy_only=False)
    return values, np.isfinite(values)


def _shown(arr: pa.Array, i: int) -> str:
    """A field's text for an error message, cut short."""
    value = arr[i].as_py() or ""
    return repr(value if len(value) <= 24 else value[:21] + "...")


# ---- the line-by-line path: exact line numbers, every format --------------

_CHUNK_LINES = 1 << 17


def _read_by_lines(path: Path, parse, skip_lines: int = 0) -> _Rows:
    """Cut the file into lines with numpy, then parse chunks of lines with Arrow kernels.

    Each Arrow string is one physical line, so a bad row's line number is exact
    whatever blank or broken lines come before it.
    """
    lines = _file_lines(path)
    rows = _Rows()
    for start in range(skip_lines, len(lines), _CHUNK_LINES):
        chunk = pc.ascii_rtrim_whitespace(lines.slice(start, _CHUNK_LINES))
        frames, code, describe = parse(chunk)
        rows.add(frames, code, start + 1, describe)
    if not rows.parts:
        rows.parts.append(Frames.empty())
    return rows


def _file_lines(path: Path) -> pa.Array:
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
    # Offsets must be contiguous, so each line keeps its terminator; callers rtrim.
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


def _split(lists: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """A list array as (all items flat, index of each row's first item, item count per row)."""
    offsets = lists.offsets.to_numpy()
    return lists.values, offsets[:-1], np.diff(offsets)


def _take(flat: pa.Array, index: np.ndarray) -> pa.Array:
    if len(flat) == 0:
        return pa.array([""] * len(index), flat.type)
    return flat.take(pa.array(np.minimum(index, len(flat) - 1), pa.int64()))


def _set(code: np.ndarray, bad: np.ndarray, value: int) -> None:
    """Give a reason to the bad rows that have none yet, so a row reports its first problem."""
    code[(code == 0) & bad] = value


def _data_bytes(flat: pa.Array, first: np.ndarray, dlc: np.ndarray, rows: np.ndarray, skip: int):
    """Payloads of ``rows`` whose bytes are items ``skip .. skip+dlc-1``, each one or two hex digits.

    All rows' bytes are decoded in one call; returns the (N, 8) payload and
    the rows with a byte that is not hex.
    """
    payload = np.zeros((len(first), 8), np.uint8)
    dlc = dlc[rows]
    row = np.repeat(rows, dlc)
    byte = np.arange(len(row)) - np.repeat(np.cumsum(dlc) - dlc, dlc)
    values, ok = _parse_int(_take(flat, first[row] + skip + byte), 16, 2)
    payload[row, byte] = values
    bad = np.zeros(len(first), bool)
    bad[row[~ok]] = True
    return payload, bad


def _parse_ctt_lines(chunk: pa.Array, columns: list[int], n_columns: int):
    n = len(chunk)
    flat, first, count = _split(pc.split_pattern(chunk, ","))
    code = np.zeros(n, np.uint8)
    _set(code, count != n_columns, 1)
    # Spaces around a field are allowed, as pandas' parser (the fast path) allows them.
    ts_s, id_s, data_s, attack_s = (
        pc.ascii_trim_whitespace(_take(flat, first + np.where(count == n_columns, c, 0))) for c in columns
    )
    ts, ok_ts = _parse_float(ts_s)
    can_id, ok_id = _parse_int(id_s, 16, 8)
    payload, dlc, ok_data = _parse_payload(data_s)
    attack, ok_attack = _parse_float(attack_s)
    _set(code, ~ok_ts, 2)
    _set(code, ~ok_id | (can_id > MAX_CAN_ID), 3)
    _set(code, ~ok_data, 4)
    _set(code, ~ok_attack | ((attack != 0) & (attack != 1)), 5)
    code[_byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        return {
            1: lambda: f"expected {n_columns} comma-separated fields, got {count[i]}",
            2: lambda: f"timestamp {_shown(ts_s, i)} is not a number",
            3: lambda: f"arbitration_id {_shown(id_s, i)} is not a hex CAN id",
            4: lambda: f"data_field {_shown(data_s, i)} is not 0-8 hex bytes",
            5: lambda: f"attack {_shown(attack_s, i)} is not 0 or 1",
        }[int(code[i])]()

    label = np.where(ok_attack, attack, 0)
    return _make_frames(n, ts, can_id, dlc, payload, label), code, describe


def _parse_hcrl_csv(chunk: pa.Array):
    n = len(chunk)
    flat, first, count = _split(pc.split_pattern(chunk, ","))
    code = np.zeros(n, np.uint8)
    _set(code, count < 4, 1)
    dlc_s = _take(flat, first + 2)
    dlc, ok_dlc = _parse_int(dlc_s, 10, 2)
    _set(code, ~ok_dlc, 2)
    _set(code, dlc > 8, 3)
    _set(code, count != dlc + 4, 4)
    ts_s, id_s, flag_s = _take(flat, first), _take(flat, first + 1), _take(flat, first + count - 1)
    ts, ok_ts = _parse_float(ts_s)
    can_id, ok_id = _parse_int(id_s, 16, 8)
    injected = pc.equal(flag_s, "T").to_numpy(zero_copy_only=False)
    normal = pc.equal(flag_s, "R").to_numpy(zero_copy_only=False)
    _set(code, ~ok_ts, 5)
    _set(code, ~ok_id | (can_id > MAX_CAN_ID), 6)
    _set(code, ~(injected | normal), 7)
    payload, bad_bytes = _data_bytes(flat, first, dlc, np.flatnonzero(code == 0), skip=3)
    _set(code, bad_bytes, 8)
    code[_byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        return {
            1: lambda: f"expected at least 4 comma-separated fields, got {count[i]}",
            2: lambda: f"DLC {_shown(dlc_s, i)} is not a number",
            3: lambda: f"DLC {dlc[i]} is over 8",
            4: lambda: f"DLC {dlc[i]} needs {dlc[i] + 4} fields, got {count[i]}",
            5: lambda: f"timestamp {_shown(ts_s, i)} is not a number",
            6: lambda: f"CAN ID {_shown(id_s, i)} is not a hex CAN id",
            7: lambda: f"last field {_shown(flag_s, i)} is not the flag R or T",
            8: lambda: f"data bytes {','.join(chunk[i].as_py().split(',')[3:-1])!r} are not hex bytes",
        }[int(code[i])]()

    return _make_frames(n, ts, can_id, np.minimum(dlc, 8), payload, injected), code, describe


_LOG_WORDS = {0: "Timestamp:", 2: "ID:", 5: "DLC:"}


def _parse_hcrl_log(chunk: pa.Array):
    """``Timestamp: T  ID: I  000  DLC: D  b0 b1 ...``: whitespace-separated words at fixed places."""
    n = len(chunk)
    # Arrow gives an empty first word for leading spaces: trim them first.
    flat, first, count = _split(pc.ascii_split_whitespace(pc.ascii_ltrim_whitespace(chunk)))
    shaped = count >= 7
    for k, word in _LOG_WORDS.items():
        shaped &= pc.equal(_take(flat, first + k), word).to_numpy(zero_copy_only=False)
    code = np.zeros(n, np.uint8)
    _set(code, ~shaped, 1)
    ts_s, id_s, dlc_s = _take(flat, first + 1), _take(flat, first + 3), _take(flat, first + 6)
    ts, ok_ts = _parse_float(ts_s)
    can_id, ok_id = _parse_int(id_s, 16, 8)
    dlc, ok_dlc = _parse_int(dlc_s, 10, 2)
    _set(code, ~ok_ts, 2)
    _set(code, ~ok_id | (can_id > MAX_CAN_ID), 3)
    _set(code, ~ok_dlc | (dlc > 8), 4)
    _set(code, count != dlc + 7, 5)
    payload, bad_bytes = _data_bytes(flat, first, dlc, np.flatnonzero(code == 0), skip=7)
    _set(code, bad_bytes, 6)
    code[_byte_lengths(chunk) == 0] = BLANK

    def describe(i: int) -> str:
        return {
            1: lambda: "not a 'Timestamp: <t> ID: <id> 000 DLC: <n> <bytes>' line",
            2: lambda: f"timestamp {_shown(ts_s, i)} is not a number",
            3: lambda: f"ID {_shown(id_s, i)} is not a hex CAN id",
            4: lambda: f"DLC {_shown(dlc_s, i)} is not 0..8",
            5: lambda: f"DLC {dlc[i]} but {count[i] - 7} data bytes",
            6: lambda: f"data bytes {' '.join(chunk[i].as_py().split()[7:])!r} are not hex bytes",
        }[int(code[i])]()

    return _make_frames(n, ts, can_id, np.minimum(dlc, 8), payload), code, describe


# ---- can-train-and-test: pandas' C parser first ----------------------------


@dataclass(frozen=True)
class _Header:
    line: int  # 1-based line number of the header
    names: list[str]  # as written, so pandas' column names match


def _read_ctt(path: Path) -> _Rows:
    """The fast path reads clean files; any doubt re-reads line by line for exact bad-row reports."""
    header = _header(path)
    lowered = [name.strip().lower() for name in header.names]
    columns = [lowered.index(name) for name in CTT_COLUMNS]
    frames = _read_ctt_fast(path, header) if len(header.names) == len(CTT_COLUMNS) else None
    if frames is not None:
        rows = _Rows()
        rows.parts.append(frames)
    else:
        parse = lambda chunk: _parse_ctt_lines(chunk, columns, len(header.names))  # noqa: E731
        rows = _read_by_lines(path, parse, skip_lines=header.line)
    rows.header_only = rows.bad == 0
    return rows


def _header(path: Path) -> _Header:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            text = raw.decode("utf-8", errors="replace")
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            names = ctt_header_names(text)
            if names is None:
                raise KdgatError(
                    f"{path}: a can_train_and_test file starts with the header "
                    f"'{','.join(CTT_COLUMNS)}', found {text.strip()[:60]!r} at line {number}"
                )
            return _Header(number, names)
    raise KdgatError(f"{path}: no usable CAN frames in this can_train_and_test file (it has no rows)")


def _read_ctt_fast(path: Path, header: _Header) -> Frames | None:
    """pandas' C parser with typed columns; None as soon as anything looks wrong.

    On few cores pandas' parser beats Arrow's. Ids and payloads stay Arrow
    strings (``ArrowDtype``): no Python object per value, and no guessing
    that would read the payload ``0102`` as the number 102.
    """
    lowered = [name.strip().lower() for name in header.names]
    ts_name, id_name, data_name, attack_name = (header.names[lowered.index(c)] for c in CTT_COLUMNS)
    text = pd.ArrowDtype(pa.large_string())
    try:
        df = pd.read_csv(
            path,
            skiprows=header.line - 1,
            dtype={ts_name: "float64", id_name: text, data_name: text, attack_name: "int8"},
            na_filter=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except (ValueError, OverflowError):  # bad number, wrong field count (ParserError), bad UTF-8
        return None
    if not isinstance(df.index, pd.RangeIndex) or list(df.columns) != header.names:
        return None  # pandas took a first column as the index: rows are wider than the header
    timestamp = df[ts_name].to_numpy(np.float64)
    label = df[attack_name].to_numpy(np.int8)
    if not np.isfinite(timestamp).all() or ((label != 0) & (label != 1)).any():
        return None
    frames = _make_frames(len(df), timestamp=timestamp, label=label)
    at = 0
    for chunk in _arrow_chunks(df[id_name]):
        can_id = _ids_fast(chunk)
        if can_id is None:
            return None
        frames.can_id[at : at + len(chunk)] = can_id
        at += len(chunk)
    at = 0
    for chunk in _arrow_chunks(df[data_name]):
        decoded = _payload_fast(chunk)
        if decoded is None:
            return None
        frames.payload[at : at + len(chunk)], frames.dlc[at : at + len(chunk)] = decoded
        at += len(chunk)
    return frames


def _arrow_chunks(series: pd.Series) -> list[pa.Array]:
    arrow = pa.array(series.array)  # zero-copy for an ArrowDtype column
    return arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]


def _ids_fast(arr: pa.Array) -> np.ndarray | None:
    """Left-pad to 4 or 8 digits, unhex in one C call, read the bytes as big-endian ints."""
    if arr.null_count:
        return None
    if len(arr) == 0:
        return np.zeros(0, np.int64)
    lengths = _string_buffers(arr)[0]
    if lengths.min() < 1 or lengths.max() > 8:
        return None
    width = 4 if lengths.max() <= 4 else 8
    if lengths.min() != width:
        arr = pc.ascii_lpad(arr, width=width, padding="0")
    try:
        raw = binascii.a2b_hex(_string_buffers(arr)[1])
    except binascii.Error:
        return None
    values = np.frombuffer(raw, ">u2" if width == 4 else ">u4")
    return None if values.max() > MAX_CAN_ID else values


def _payload_fast(arr: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """Right-pad to 16 digits with '0' (zero bytes past the DLC), then unhex in one C call."""
    if arr.null_count:
        return None
    if len(arr) == 0:
        return np.zeros((0, 8), np.uint8), np.zeros(0, np.uint8)
    lengths = _string_buffers(arr)[0]
    if (lengths & 1).any() or lengths.max() > 16:
        return None
    if lengths.min() != 16:
        arr = pc.ascii_rpad(arr, width=16, padding="0")
    try:
        raw = binascii.a2b_hex(_string_buffers(arr)[1])
    except binascii.Error:
        return None
    return np.frombuffer(raw, np.uint8).reshape(len(arr), 8), (lengths // 2).astype(np.uint8)
