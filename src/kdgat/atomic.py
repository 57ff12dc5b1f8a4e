"""Atomic file writes and inter-process locks, for models, caches and markers.

A killed job must never leave a half-written model, cache or marker, and two
jobs must never race on one file. So every file goes through the launcher's
one atomic writer (a temporary name in the same directory, flushed, renamed
over the target), and writers that must not run twice take a lock file first.
Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import filelock

from hydra_plugins.kdgat_chain_launcher import atomic_write, file_lock, write_text_atomic  # noqa: F401 (kdgat's too)
from kdgat.errors import KdgatError

DEFAULT_LOCK_TIMEOUT_S = 600.0


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npz_atomic(path: str | os.PathLike, **arrays: Any) -> None:
    """``np.savez`` (uncompressed, no pickles) to ``path``, atomically."""
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file that guards ``path``: ``<path>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked(path: str | os.PathLike, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``path`` (via ``<path>.lock``).

    The lock is an OS lock on an open file, so it dies with its holder: a
    killed job never leaves a stale lock. Times out with a KdgatError.
    """
    lp = lock_path(path)
    lock = file_lock(lp, timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise KdgatError(
            f"waited {timeout:g}s for the lock {lp}: another job is still writing {Path(path).name}; "
            "wait for it, or raise the timeout"
        ) from None
    try:
        yield
    finally:
        lock.release()


def digest_path(path: str | os.PathLike) -> Path:
    """Where a file's sha256 is kept beside it (kdgat.training writes one for every model and checkpoint)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (no whole-file copy in memory)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


__all__ = [
    "atomic_write",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "save_npz_atomic",
    "locked",
    "lock_path",
    "sha256_file",
]
