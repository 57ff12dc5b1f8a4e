"""Files written whole or not at all, and locks that die with their holder.

The one atomic writer of the launcher and of the apps built on it: a killed
job must never leave half a manifest, model or marker, and a reader must
never see one.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp makes files 0600; finished files get the usual mode, so colleagues sharing a folder can read them.
_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: "str | os.PathLike[str]", mode: str = "w") -> Iterator[IO[Any]]:
    """A file open on a temporary name beside `path`; flushed to disk and renamed over `path` on success,
    removed on an exception (the old `path` untouched)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def unfinished_writes(path: "str | os.PathLike[str]") -> "list[Path]":
    """The temporary files that atomic_write(path) calls killed mid-write left beside `path`."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = f".{path.name}."
    return [p for p in path.parent.iterdir()
            if p.name.startswith(prefix) and p.name.endswith(".tmp") and len(p.name) == len(prefix) + 12]


def write_text_atomic(path: "str | os.PathLike[str]", text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; best effort (not every file system allows it)."""
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


def replace_symlink(link: Path, target: "str | os.PathLike[str]") -> None:
    """Point `link` at `target` in one rename, so a reader never finds it missing."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def file_lock(path: "str | os.PathLike[str]", timeout: float = -1) -> Any:
    """An OS lock on `path` (made if absent): held by one process at a time, released if it dies."""
    import filelock  # here: --cfg job never takes a lock

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(path), timeout=timeout)


def snapshot_code(root: Path, target: Path) -> Path:
    """A copy of an app's code (its git-tracked files, else the folder's, without data and runs) at `target`,
    so that jobs starting hours later run the code as submitted."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True)
    files = [f for f in listed.stdout.split("\0") if f] if listed.returncode == 0 else None
    if files is None:
        shutil.copytree(root, target, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "multirun",
                                                                   "outputs", "data", "experimentruns"))
    else:
        for name in files:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            if (root / name).is_file():
                shutil.copy2(root / name, target / name)
    return target
