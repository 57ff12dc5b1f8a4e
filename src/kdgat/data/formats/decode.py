"""Arrow string columns to numpy values, for every reader: whole columns, no loop per row.

Each decoder returns the values and a per-row ``ok``, so that a reader can
name a bad row's first problem instead of failing the file. The ``hex_*``
functions are the fast path for clean columns: one ``binascii`` call, or
None as soon as anything is off.
"""

from __future__ import annotations

import binascii

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdgat.data.formats.fields import FLOAT_PATTERN, MAX_CAN_ID

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


def byte_lengths(arr: pa.Array) -> np.ndarray:
    """Each string's length in bytes (0 for a null)."""
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


def parse_int(arr: pa.Array, base: int, max_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned ints of 1..max_digits digits in base 10 or 16."""
    lengths = byte_lengths(arr)
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


def parse_payload(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0..8 bytes as 0..16 hex digits: (payload (N, 8), zero past the DLC; dlc; ok)."""
    lengths = byte_lengths(arr)
    ok = (lengths <= 16) & (lengths % 2 == 0)
    arr = _keep_only(arr, ok, "")
    pairs = _HEX_PAIR[_fixed_width(arr, 16, right_align=False).view(np.uint16)]
    ok &= (pairs >= 0).all(axis=1)
    payload = np.where(ok[:, None], pairs, 0).astype(np.uint8)
    return payload, np.where(ok, lengths // 2, 0), ok


def parse_float(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if arr.null_count:
        arr = arr.fill_null("")
    try:
        values = pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:  # some value is not a number: find which, then cast the rest
        valid = pc.match_substring_regex(arr, FLOAT_PATTERN)
        values = pc.cast(pc.if_else(valid, arr, "nan"), pa.float64())
    values = values.to_numpy(zero_copy_only=False)
    return values, np.isfinite(values)


def float_column(arr: pa.Array) -> np.ndarray | None:
    """Finite float64 values of a column of numbers, or None if one is not (the fast path's test)."""
    try:
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    return values if np.isfinite(values).all() else None


def shown(arr: pa.Array, i: int) -> str:
    """A field's text for an error message, cut short."""
    value = arr[i].as_py() or ""
    return repr(value if len(value) <= 24 else value[:21] + "...")


# ---- rows split into fields -------------------------------------------------------------------------


def split(lists: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """A list array (from ``pc.split_pattern`` and the like) as (all items flat, index of each row's first
    item, item count per row)."""
    offsets = lists.offsets.to_numpy()
    return lists.values, offsets[:-1], np.diff(offsets)


def take(flat: pa.Array, index: np.ndarray) -> pa.Array:
    """Items ``index`` of ``flat``; an index past the end (a row with too few fields) gives the last item."""
    if len(flat) == 0:
        return pa.array([""] * len(index), flat.type)
    return flat.take(pa.array(np.minimum(index, len(flat) - 1), pa.int64()))


def data_bytes(flat: pa.Array, first: np.ndarray, dlc: np.ndarray, rows: np.ndarray, skip: int,
               two_digits: bool = False):
    """Payloads of ``rows`` whose bytes are items ``skip .. skip+dlc-1``, each one or two hex digits
    (exactly two with ``two_digits``).

    All rows' bytes are decoded in one call; returns the (N, 8) payload and
    the rows with a byte that is not hex.
    """
    payload = np.zeros((len(first), 8), np.uint8)
    dlc = dlc[rows]
    row = np.repeat(rows, dlc)
    byte = np.arange(len(row)) - np.repeat(np.cumsum(dlc) - dlc, dlc)
    items = take(flat, first[row] + skip + byte)
    values, ok = parse_int(items, 16, 2)
    if two_digits:
        ok &= byte_lengths(items) == 2
    payload[row, byte] = values
    bad = np.zeros(len(first), bool)
    bad[row[~ok]] = True
    return payload, bad


# ---- the fast path: clean columns in one C call -----------------------------------------------------


def hex_ids(arr: pa.Array) -> np.ndarray | None:
    """CAN ids: left-pad to 4 or 8 digits, unhex in one C call, read the bytes as big-endian ints."""
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


def hex_payloads(arr: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(payload, dlc): right-pad to 16 digits with '0' (zero bytes past the DLC), then unhex in one C call."""
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


# ---- the fast paths' columns: all values of a column at once, -1 or None where not as expected -------------


def hex_pairs(arr: pa.Array) -> np.ndarray | None:
    """The byte value of each string that is exactly two hex digits, -1 for other strings of at most two
    characters; None when a string is longer (a column that is no byte column)."""
    lengths = byte_lengths(arr)
    if len(arr) == 0:
        return np.zeros(0, np.int16)
    if lengths.max() > 2:
        return None
    pairs = _HEX_PAIR[_fixed_width(arr, 2, right_align=False).view(np.uint16)[:, 0]]
    return np.where(lengths == 2, pairs, -1)


def first_bytes(arr: pa.Array) -> np.ndarray:
    """The first byte of each string, 0 for an empty one."""
    if arr.null_count:
        arr = arr.fill_null("")
    lengths, raw = _string_buffers(arr)
    data = np.frombuffer(raw, np.uint8)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    out = np.zeros(len(arr), np.uint8)
    some = lengths > 0
    out[some] = data[starts[some]]
    return out


def spaced_payloads(arr: pa.Array, dlc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(payload, ok) of fields holding exactly ``dlc`` two-digit hex bytes, one space between them."""
    n = len(arr)
    lengths = byte_lengths(arr)
    ok = lengths == np.where(dlc > 0, 3 * dlc.astype(np.int64) - 1, 0)
    arr = _keep_only(arr, ok, "")
    chars = _fixed_width(arr, 23, right_align=False)
    payload = np.zeros((n, 8), np.uint8)
    for k in range(8):
        present = dlc > k
        hi = _HEX_VALUE[chars[:, 3 * k]].astype(np.int16)
        lo = _HEX_VALUE[chars[:, 3 * k + 1]].astype(np.int16)
        ok &= ~present | ((hi >= 0) & (lo >= 0))
        if k < 7:
            ok &= ~(dlc > k + 1) | (chars[:, 3 * k + 2] == ord(" "))
        payload[:, k] = np.where(present & ok, hi * 16 + lo, 0)
    payload[~ok] = 0
    return payload, ok
