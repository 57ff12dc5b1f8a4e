"""What the CAN file format tests write: small hand-written files, payload rows and a few sample frames.
Not a test module: test_formats_*.py import from it (tests/unit is on sys.path, as for every test module here).
"""

from __future__ import annotations

import numpy as np

from kdgat.data.frames import Frames


CTT_HEADER = "timestamp,arbitration_id,data_field,attack\n"


LOG_LINE = "Timestamp: 1479121434.850202        ID: 0350    000    DLC: 8    05 28 84 66 6d 00 00 a2\n"


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def payload_rows(*rows: list[int]) -> np.ndarray:
    out = np.zeros((len(rows), 8), np.uint8)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def sample_frames() -> Frames:
    return Frames(
        timestamp=np.array([1672531200.001234, 1672531200.5, 0.000001]),
        can_id=np.array([0x0C1, 0x1ABCDEF0, 0x7], np.int32),
        dlc=np.array([8, 2, 0], np.uint8),
        payload=payload_rows([0x00, 0xF0, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6], [0x05, 0x20], []),
        label=np.array([0, 1, 1], np.uint8),
    )
