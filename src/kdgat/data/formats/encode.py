"""Frames to text, for every writer: the text is assembled as one byte matrix.

A row per frame, a column per character, NUL where a variable-width field is
shorter than its column; ``squeeze`` then drops the NULs. So a million
frames take well under a second, with no loop per frame.
"""

from __future__ import annotations

import numpy as np

from kdgat.data.formats.fields import MAX_CAN_ID
from kdgat.data.frames import Frames

DEC = np.frombuffer(b"0123456789", np.uint8)
HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", np.uint8)
HEX_LOWER = np.frombuffer(b"0123456789abcdef", np.uint8)


def check_writable(frames: Frames) -> None:
    """Raise ValueError unless every frame can be written in any format (the formats add their own rules)."""
    if len(frames) == 0:
        return
    if not np.all(np.isfinite(frames.timestamp)):
        raise ValueError("cannot write frames with NaN or infinite timestamps")
    can_id = np.asarray(frames.can_id, np.int64)
    if can_id.min() < 0 or can_id.max() > MAX_CAN_ID:
        raise ValueError(f"CAN ids must be in 0..0x{MAX_CAN_ID:X}")
    if np.asarray(frames.dlc).max() > 8:
        raise ValueError("DLC must be 0..8")
    if not np.isin(np.asarray(frames.label), (0, 1)).all():
        raise ValueError("labels must be 0 or 1")


def const(n: int, text: bytes) -> np.ndarray:
    """The same text on each of n rows."""
    return np.broadcast_to(np.frombuffer(text, np.uint8), (n, len(text)))


def flag(label: np.ndarray, injected: bytes, normal: bytes) -> np.ndarray:
    """One character per row: ``injected`` where the label is 1, else ``normal``."""
    return np.where(np.asarray(label) == 1, ord(injected), ord(normal)).astype(np.uint8)[:, None]


def number_columns(values: np.ndarray, base: int, min_width: int, alphabet: np.ndarray) -> np.ndarray:
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


def timestamp_columns(ts: np.ndarray) -> np.ndarray:
    """``[-]int.ffffff`` with exactly six decimals, the precision of every real capture."""
    micros = np.rint(np.asarray(ts, np.float64) * 1e6).astype(np.int64)
    negative = micros < 0
    micros = np.abs(micros)
    sign = np.where(negative, ord("-"), 0).astype(np.uint8)[:, None]
    whole = number_columns(micros // 1_000_000, 10, 1, DEC)
    frac = number_columns(micros % 1_000_000, 10, 6, DEC)
    n = len(micros)
    return np.concatenate([sign, whole, const(n, b"."), frac], axis=1)


def payload_columns(payload: np.ndarray, dlc: np.ndarray, alphabet: np.ndarray, before: bytes, between: bytes,
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
        parts = [const(n, sep)] if sep else []
        parts += [hi[:, j : j + 1], lo[:, j : j + 1]]
        if after:
            parts.append(const(n, after))
        block = np.concatenate(parts, axis=1)
        block = np.where(present[:, j : j + 1], block, 0).astype(np.uint8)
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def squeeze(columns: list[np.ndarray]) -> bytes:
    """The rows of these side-by-side column blocks as text, the NULs left out."""
    flat = np.concatenate(columns, axis=1).ravel()
    return flat[flat != 0].tobytes()
