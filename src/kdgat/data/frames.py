"""CAN frames as columns of numpy arrays: the one shape every reader returns.

Columns rather than row objects, so that readers, the synthetic generator and
the graph builder all work on whole arrays and never loop per frame in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frames:
    """N CAN frames in time order.

    timestamp: float64 seconds; can_id: int32 arbitration id; dlc: uint8 data
    length 0..8; payload: uint8 (N, 8), bytes past the DLC are zero;
    label: uint8, 1 for an injected (attack) frame.
    """

    timestamp: np.ndarray
    can_id: np.ndarray
    dlc: np.ndarray
    payload: np.ndarray
    label: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        for name in ("can_id", "dlc", "label"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Frames.{name} has {len(getattr(self, name))} rows, timestamp has {n}")
        if self.payload.shape != (n, 8):
            raise ValueError(f"Frames.payload must be ({n}, 8), got {self.payload.shape}")

    def __len__(self) -> int:
        return len(self.timestamp)

    @classmethod
    def empty(cls) -> "Frames":
        return cls(
            timestamp=np.zeros(0, np.float64),
            can_id=np.zeros(0, np.int32),
            dlc=np.zeros(0, np.uint8),
            payload=np.zeros((0, 8), np.uint8),
            label=np.zeros(0, np.uint8),
        )

    @classmethod
    def concat(cls, parts: list["Frames"]) -> "Frames":
        if not parts:
            return cls.empty()
        return cls(
            timestamp=np.concatenate([p.timestamp for p in parts]),
            can_id=np.concatenate([p.can_id for p in parts]),
            dlc=np.concatenate([p.dlc for p in parts]),
            payload=np.concatenate([p.payload for p in parts]),
            label=np.concatenate([p.label for p in parts]),
        )

    def take(self, index: np.ndarray | slice) -> "Frames":
        return Frames(
            self.timestamp[index], self.can_id[index], self.dlc[index], self.payload[index], self.label[index]
        )


@dataclass
class ReadReport:
    """What a reader made of one file: kept so that nothing is dropped silently."""

    path: str
    format: str
    frames: int = 0
    injected: int = 0
    bad_rows: int = 0
    # (line number, 1-based, and the reason) of the first few bad rows.
    bad_examples: list[tuple[int, str]] = field(default_factory=list)
