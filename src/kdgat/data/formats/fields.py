"""One field of a CAN row, judged as text: the rules the formats' sniffing shares.

Light on purpose (``re`` only, no numpy): the launcher checks the first lines
of every file of a dataset before it submits anything. The readers apply the
same rules to whole columns at once (kdgat.data.formats.decode).
"""

from __future__ import annotations

import re

MAX_CAN_ID = 0x1FFFFFFF  # 29-bit extended identifier
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_HEX_ID = re.compile(r"^[0-9A-Fa-f]{1,8}$")
_HEX_BYTE = re.compile(r"^[0-9A-Fa-f]{1,2}$")
_PAYLOAD = re.compile(r"^(?:[0-9A-Fa-f]{2}){0,8}$")
FLOAT_PATTERN = _FLOAT.pattern  # the decoders' test for a number the fast cast refused


def is_number(text: str) -> bool:
    return bool(_FLOAT.match(text))


def is_can_id(text: str) -> bool:
    """1-8 hex digits, at most MAX_CAN_ID."""
    return bool(_HEX_ID.match(text)) and int(text, 16) <= MAX_CAN_ID


def is_hex_byte(text: str) -> bool:
    """One payload byte written on its own: one or two hex digits."""
    return bool(_HEX_BYTE.match(text))


def is_hex_payload(text: str) -> bool:
    """0-8 bytes written back to back, two hex digits each."""
    return bool(_PAYLOAD.match(text))


def dlc_of(text: str) -> int | None:
    """The data length 0..8 written in decimal, or None."""
    return int(text) if text.isdigit() and len(text) <= 2 and int(text) <= 8 else None


def shorten(text: str, limit: int = 60) -> str:
    """A line cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
