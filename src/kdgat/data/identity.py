"""The identity of a prepared dataset: its raw files and the preprocessing settings, hashed.

Kept apart from the graph building (and free of numpy) because the launcher
and `--cfg job` compute every stage's fingerprint, and must stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kdgat.errors import KdgatError

# Bump when the graphs' meaning changes (features, scaling, file layout): old
# cache entries then stop matching instead of being read as the new thing.
GRAPHSET_VERSION = 3  # 3: the `changed` node feature
FORMAT_VERSION = GRAPHSET_VERSION


def check_window(window: int, stride: int) -> None:
    if int(window) != window or window < 2:
        raise KdgatError(f"window must be an integer of at least 2 frames, got {window!r}")
    if int(stride) != stride or stride < 1:
        raise KdgatError(f"stride must be a positive integer number of frames, got {stride!r}")


def as_layout(layout_or_root: Any):
    if isinstance(layout_or_root, (str, os.PathLike)):
        from kdgat.data.layout import discover

        return discover(Path(layout_or_root))
    return layout_or_root


def preprocessing_settings(window: int, stride: int | None, val_fraction: float, seed: int) -> dict[str, Any]:
    stride = window if stride is None else stride
    check_window(window, stride)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise KdgatError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    return {
        "window": int(window),
        "stride": int(stride),
        "val_fraction": float(val_fraction),
        "seed": int(seed),
        "format_version": FORMAT_VERSION,
    }


def file_groups(layout) -> list[tuple[str, str, list[Path]]]:
    """(role, name, files) for every train folder and test scenario, in the layout's order."""
    out = [("train", name, sorted(Path(p) for p in files)) for name, files in layout.train.items()]
    out += [("test", name, sorted(Path(p) for p in files)) for name, files in layout.test.items()]
    return out


def raw_identity(layout) -> list[dict[str, Any]]:
    """The raw files as (relative path, size, mtime_ns): cheap to compute, changes with the data."""
    root = Path(layout.root)
    ident = []
    for role, name, files in file_groups(layout):
        for path in files:
            st = path.stat()
            try:
                rel = path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                rel = path.as_posix()
            ident.append({"role": role, "group": name, "path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return ident


def cache_key(layout_or_root: Any, *, window: int = 100, stride: int | None = None, val_fraction: float = 0.2,
              seed: int = 0) -> str:
    """Hash of the raw files' identity and the preprocessing settings (16 hex digits)."""
    layout = as_layout(layout_or_root)
    return key_of(raw_identity(layout), preprocessing_settings(window, stride, val_fraction, seed))


def key_of(identity: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    doc = json.dumps({"files": identity, "settings": settings}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


