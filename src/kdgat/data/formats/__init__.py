"""CAN file formats: one module per format, registered in ``REGISTRY``.

A format module holds everything about one format:

- ``NAME``, ``HELP`` (how its lines look) and ``EXAMPLE`` (one row), for messages;
- ``sniff(lines) -> float``: the share of a file's first non-empty lines
  that look like this format (a format with a header says 1 or 0);
- ``head_rows(lines) -> (rows, any_usable)``: the data rows among those
  lines, and whether one of them is a usable frame;
- ``read(path) -> kdgat.data.formats.lines.Rows`` and ``write(frames) -> bytes``;
- optionally ``stream(path, digest=None)``: the file's ``lines.Parsed`` blocks one after the other,
  so that a file is counted (``scan``) without holding it in memory.

Sniffing runs in the launcher for every file of a dataset before anything is
submitted, so the format modules import only the standard library at their
top; numpy, pandas and Arrow are imported inside the functions that read and
write. To add a format, write its module and add it to ``REGISTRY``.
"""

from __future__ import annotations

import functools
import itertools
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from kdgat.data.formats import can_train_and_test, hcrl_csv, hcrl_csv_noflag, hcrl_csv_spaced, hcrl_log
from kdgat.data.formats.fields import shorten
from kdgat.errors import KdgatError

if TYPE_CHECKING:  # kdgat.data.frames imports numpy, which sniffing must not
    from typing import Iterator

    from kdgat.data.formats.lines import Parsed
    from kdgat.data.frames import Frames, ReadReport

# The one table of CAN file formats. On a tie, detection prefers the earlier one.
REGISTRY: dict[str, ModuleType] = {
    "can_train_and_test": can_train_and_test,
    "hcrl_csv": hcrl_csv,
    "hcrl_csv_noflag": hcrl_csv_noflag,
    "hcrl_csv_spaced": hcrl_csv_spaced,
    "hcrl_log": hcrl_log,
}
FORMATS = tuple(REGISTRY)
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 10


def detect_format(path: str | os.PathLike) -> str:
    """Tell a file's format from its first non-empty lines, never from its name.

    A handful of lines is enough (the formats look nothing alike); a stray bad
    line among them must not hide the format, so the majority decides.
    """
    path = _existing_file(path)
    return _format_of(path, _first_lines(path))


def read_frames(path: str | os.PathLike, fmt: str | None = None) -> tuple[Frames, ReadReport]:
    """Read one CAN file into Frames (in file order) and a ReadReport of the rows it could not use.

    ``fmt=None`` detects the format from the file's first lines.
    """
    path = _existing_file(path)
    if fmt is None:
        fmt = detect_format(path)
    elif fmt not in REGISTRY:
        raise KdgatError(f"unknown CAN file format {fmt!r} for {path}; known formats: {', '.join(REGISTRY)}")
    from kdgat.data.formats.lines import frames_and_report

    return frames_and_report(path, fmt, REGISTRY[fmt].read(path))


def scan(path: str | os.PathLike, fmt: str | None = None, digest=None) -> Iterator[Parsed]:
    """The file's blocks, parsed one after the other (frames of the usable rows, a code per line), in
    bounded memory; ``digest`` (a hashlib object) sees every byte of the file. A format without
    ``stream`` is read whole and given as one block."""
    path = _existing_file(path)
    fmt = fmt or detect_format(path)
    module = REGISTRY[fmt]
    if hasattr(module, "stream"):
        yield from module.stream(path, digest=digest)
        return
    import numpy as np

    from kdgat.data.formats.lines import Parsed

    rows = module.read(path)
    if digest is not None:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    frames = rows.frames()
    yield Parsed(1, 0, path.stat().st_size, frames, np.zeros(len(frames), np.uint8), list(rows.examples))


def count_frames(path: str | os.PathLike, fmt: str | None = None, digest=None) -> ReadReport:
    """What ``read_frames`` reports of a file, counted a block at a time without keeping its frames;
    a file with no usable row is an error naming it, as for ``read_frames``."""
    from kdgat.data.formats.lines import MAX_BAD_EXAMPLES, Rows
    from kdgat.data.frames import ReadReport

    path = _existing_file(path)
    fmt = fmt or detect_format(path)
    rows, frames, injected = Rows(), 0, 0
    for part in scan(path, fmt, digest=digest):
        frames += len(part.frames)
        injected += int(part.frames.label.sum())
        rows.bad += part.bad
        rows.examples.extend(part.examples[: max(0, MAX_BAD_EXAMPLES - len(rows.examples))])
    if frames == 0:
        rows.header_only = fmt == "can_train_and_test" and rows.bad == 0
        raise KdgatError(f"{path}: no usable CAN frames in this {fmt} file ({rows.summary()})")
    return ReadReport(path=str(path), format=fmt, frames=frames, injected=injected, bad_rows=rows.bad,
                      bad_examples=list(rows.examples))


def write_frames(path: str | os.PathLike, frames: Frames, fmt: str) -> None:
    """Write frames in one format, atomically (kdgat.atomic: a temporary file, then a rename)."""
    if fmt not in REGISTRY:
        raise ValueError(f"unknown CAN file format {fmt!r}; known: {', '.join(REGISTRY)}")
    from kdgat.atomic import write_bytes_atomic
    from kdgat.data.formats.encode import check_writable

    check_writable(frames)
    write_bytes_atomic(path, REGISTRY[fmt].write(frames))


def head_problem(path: str | os.PathLike) -> str | None:
    """Why a CAN file cannot be used, judged from its first lines (unknown format, or not one usable frame
    among them); None when it looks usable. Cached by the file's size and mtime."""
    try:
        st = Path(path).stat()
        return _head_problem(str(path), st.st_size, st.st_mtime_ns)
    except KdgatError as err:
        return str(err)
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror or err})"


@functools.lru_cache(maxsize=4096)
def _head_problem(path: str, size: int, mtime_ns: int) -> str | None:
    lines = _first_lines(_existing_file(path))
    fmt = _format_of(Path(path), lines)
    rows, usable = REGISTRY[fmt].head_rows(lines)
    if usable:
        return None
    shown = shorten(rows[0]) if rows else ""
    return (f"{path}: no usable CAN frame in its first {len(lines)} lines ({fmt}; first row {shown!r}); "
            f"a {fmt} row is like {REGISTRY[fmt].EXAMPLE!r}")


def _format_of(path: Path, lines: list[str]) -> str:
    """The format most of these lines look like (at least half of them), or an error naming the file."""
    if not lines:
        raise KdgatError(f"{path}: the file is empty, so its CAN format is unknown (known formats: {_known()})")
    shares = {name: fmt.sniff(lines) for name, fmt in REGISTRY.items()}
    best = max(shares, key=shares.get)
    if shares[best] >= 0.5:
        return best
    raise KdgatError(
        f"{path}: unknown CAN file format (first line {shorten(lines[0])!r}); known formats: {_known()}"
    )


def _known() -> str:
    return ", ".join(f"{name} ({fmt.HELP})" for name, fmt in REGISTRY.items())


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise KdgatError(f"CAN data file {path} does not exist")
    if not path.is_file():
        raise KdgatError(f"{path} is not a file (expected a CAN data file)")
    return path


def _first_lines(path: Path) -> list[str]:
    """The first non-empty lines of a file (at most SNIFF_LINES, from its first SNIFF_BYTES)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.splitlines()
    if len(head) == SNIFF_BYTES and lines:
        lines.pop()  # probably cut in the middle
    return list(itertools.islice((line for line in lines if line.strip()), SNIFF_LINES))
