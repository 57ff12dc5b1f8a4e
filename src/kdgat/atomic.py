"""Atomic file writes and inter-process locks.

A killed job must never leave a half-written model, cache or marker, and two
jobs must never race on one file (SPEC §5, §6). So every file is written to a
temporary name in the same directory, flushed to disk, then renamed over the
target (rename is atomic on one file system); and writers that must not run
twice take a lock file first. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import filelock

from kdgat.errors import KdgatError

DEFAULT_LOCK_TIMEOUT_S = 600.0


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp makes files 0600; finished files get the usual mode (0666 & ~umask)
# so that colleagues sharing a cache directory can read them.
_FILE_MODE = 0o666 & ~_current_umask()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; best effort (not every FS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a file open on a temporary name; on success it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


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
    lp.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lp), timeout=timeout)
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
