"""CAN id -> vocabulary index: the one mapping every stage and split shares."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from kdgat.atomic import write_json_atomic
from kdgat.data.frames import Frames
from kdgat.errors import KdgatError


class Vocabulary:
    """CAN id -> index, with index 0 the unknown-id slot shared by every split.

    Built once from the training frames and stored, so that every stage and
    split maps ids the same way; ids never seen in training map to 0.
    """

    UNKNOWN = 0
    _TABLE_LIMIT = 1 << 16  # ids below this are looked up in a table, others by binary search

    def __init__(self, can_ids: Iterable[int] | np.ndarray):
        ids = unique_ids(np.asarray(list(can_ids) if not hasattr(can_ids, "__len__") else can_ids, np.int64))
        self.ids: np.ndarray = ids  # sorted, distinct; index of ids[i] is i + 1
        self._table: np.ndarray | None = None
        if len(ids) and ids[0] >= 0 and ids[-1] < self._TABLE_LIMIT:
            self._table = np.zeros(int(ids[-1]) + 2, np.int64)  # last entry: "too large" -> unknown
            self._table[ids] = np.arange(1, len(ids) + 1)

    @classmethod
    def from_frames(cls, frames: Frames | Sequence[Frames]) -> "Vocabulary":
        parts = [frames] if isinstance(frames, Frames) else list(frames)
        return cls(np.concatenate([unique_ids(p.can_id) for p in parts]) if parts else [])

    def __len__(self) -> int:
        return len(self.ids) + 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self.ids, other.ids)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.ids)} ids + unknown)"

    def index(self, can_ids: np.ndarray) -> np.ndarray:
        """Vocabulary indices (int64) of an array of CAN ids; unknown ids give 0."""
        can_ids = np.asarray(can_ids)
        if len(self.ids) == 0:
            return np.zeros(can_ids.shape, np.int64)
        if self._table is not None:
            return self._table[np.clip(can_ids, 0, len(self._table) - 1)]
        can_ids = can_ids.astype(np.int64, copy=False)
        pos = np.searchsorted(self.ids, can_ids)
        clipped = np.minimum(pos, len(self.ids) - 1)
        return np.where(self.ids[clipped] == can_ids, clipped + 1, self.UNKNOWN).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "unknown_index": self.UNKNOWN, "can_ids": [int(i) for i in self.ids]}

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            ids = doc["can_ids"]
            if doc.get("version") != 1 or not isinstance(ids, list):
                raise ValueError("unexpected layout")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KdgatError(f"cannot read the vocabulary {path}: {exc}") from None
        return cls(ids)


def unique_ids(can_ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids; a table of the ids seen instead of a sort for standard 11-bit ids, filled a
    slice at a time (indexing converts its index to int64: one slice's copy, not the whole column's)."""
    can_ids = np.asarray(can_ids).reshape(-1)
    if len(can_ids) and 0 <= int(can_ids.min()) and int(can_ids.max()) < 1 << 16:
        seen = np.zeros(1 << 16, bool)
        for start in range(0, len(can_ids), 1 << 16):
            seen[can_ids[start : start + (1 << 16)]] = True
        return np.flatnonzero(seen).astype(np.int64)
    return np.unique(can_ids.astype(np.int64))
