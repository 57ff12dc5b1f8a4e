"""The prepared dataset: graphs for train, validation and each test scenario, cached.

Every stage calls ``prepare`` and gets the same vocabulary, the same split and
the same graphs: the first call reads the raw files, builds
everything and stores it under ``cache_dir/<key>/``; later calls load it. The
key hashes the raw files' identity (relative path, size, mtime_ns) and the
preprocessing settings, so a changed file or setting gets a fresh directory.

A cache directory is complete only when its ``manifest.json`` exists: it is
written last and lists every file with its size and sha256, which are checked
on every load; a file that fails the check is rebuilt, never used. Building
happens under a lock on the key directory, so two jobs starting together build
once: the second waits, then loads what the first wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from kdgat.atomic import locked, save_npz_atomic, write_json_atomic
from kdgat.data.duplicates import Overlaps, find_overlaps
from kdgat.data.frames import ReadReport
from kdgat.data.graphset import GraphSet
from kdgat.data.vocabulary import Vocabulary
from kdgat.data.windows import build_graphs
from kdgat.data.identity import FORMAT_VERSION, as_layout, file_groups, key_of, preprocessing_settings, raw_identity
from kdgat.errors import KdgatError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VOCAB = "vocab.json"
SPLIT = "split.npz"
DEFAULT_LOCK_TIMEOUT_S = 6 * 3600.0  # a large dataset can take a while to build


@dataclass
class Prepared:
    """What every stage trains and evaluates on; see ``prepare``."""

    key: str
    directory: Path
    vocab: Vocabulary
    train: GraphSet
    val: GraphSet
    tests: dict[str, GraphSet]
    reports: list[ReadReport]
    # indices of the train and val graphs among all windows of the train_* files, in file order
    train_idx: np.ndarray
    val_idx: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False
    # byte-identical files: copies read once, and leaks between training and test (kdgat.data.duplicates)
    overlaps: Overlaps = field(default_factory=Overlaps)


# --------------------------------------------------------------------------- prepare


def prepare(
    layout_or_root: Any,
    cache_dir: str | os.PathLike,
    *,
    window: int = 100,
    stride: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
) -> Prepared:
    """Load the prepared dataset from the cache, building it first if needed.

    ``layout_or_root`` is a dataset folder or a ``DatasetLayout``. ``stride``
    defaults to ``window`` (non-overlapping windows). Windows never span two files. Train graphs are the windows of the ``train_*``
    folders, split once (seeded, stratified by label) into train and val; the
    vocabulary is built from the train split alone, so val meets unknown ids
    the way the test scenarios do. Byte-identical files are read once, and a
    file shared by a training and a test folder is a warning on every call
    (kdgat.data.duplicates), so that it is in the log of every stage.
    """
    layout = as_layout(layout_or_root)
    prepared = _prepare(layout, cache_dir, window, stride, val_fraction, seed, progress, lock_timeout)
    for message in prepared.overlaps.messages():
        log.warning("dataset %s: %s", layout.root, message)
    return prepared


def _prepare(layout, cache_dir, window, stride, val_fraction, seed, progress, lock_timeout) -> Prepared:
    settings = preprocessing_settings(window, stride, val_fraction, seed)
    if not layout.train:
        raise KdgatError(f"{layout.root}: no train_* folder with CAN files; cannot build a vocabulary or a split")
    identity = raw_identity(layout)
    key = key_of(identity, settings)
    directory = Path(cache_dir).absolute() / key

    found = _Cache(directory).load()
    if found is not None:
        return found
    with locked(directory, timeout=lock_timeout):
        cache = _Cache(directory)
        found = cache.load()  # another job may have built it while we waited
        if found is not None:
            return found
        if cache.problem:
            log.warning("prepared-data cache %s: %s; rebuilding it", directory, cache.problem)
        return _build(layout, directory, key, identity, settings, cache, progress)


class _Cache:
    """Reads one key directory, checking every file against the manifest."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.manifest: dict[str, Any] | None = None
        self.problem = ""  # why the cache could not be used ("" when it is absent or fine)
        self.good: set[str] = set()  # files whose checksum matched

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[BinaryIO]:
        """The file, open at its start, once its size and sha256 match the manifest.

        The check and the load use one open file, so a file replaced between
        them cannot slip through. Raises ValueError on a mismatch.
        """
        entry = self.manifest["files"].get(name) if self.manifest else None
        if entry is None:
            raise ValueError(f"{name} is not in the manifest")
        try:
            f = open(self.directory / name, "rb")
        except OSError as exc:
            raise ValueError(f"{name} cannot be opened ({exc.strerror or exc})") from None
        with f:
            size, digest = _digest(f)
            if size != entry["size"]:
                raise ValueError(f"{name} has {size} bytes, the manifest says {entry['size']}")
            if digest != entry["sha256"]:
                raise ValueError(f"{name} does not match its checksum")
            f.seek(0)
            yield f

    def _manifest(self) -> bool:
        path = self.directory / MANIFEST
        if not path.exists():
            return False
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest.get("format_version") != FORMAT_VERSION or not isinstance(manifest.get("files"), dict):
                raise ValueError("unexpected layout")
        except (OSError, ValueError) as exc:
            self.problem = f"{MANIFEST} is unreadable ({exc})"
            return False
        self.manifest = manifest
        return True

    def vocab(self) -> Vocabulary:
        with self._open(VOCAB) as f:
            return Vocabulary(json.loads(f.read())["can_ids"])

    def split(self) -> tuple[np.ndarray, np.ndarray, int]:
        with self._open(SPLIT) as f, np.load(f, allow_pickle=False) as z:
            return np.asarray(z["train_idx"]), np.asarray(z["val_idx"]), int(z["n"])

    def graphs(self, name: str) -> GraphSet:
        with self._open(name) as f:
            return GraphSet.load(f)

    def load(self) -> Prepared | None:
        """The whole prepared dataset, or None (with ``problem`` set if something was wrong)."""
        if not self._manifest():
            return None
        m = self.manifest
        try:
            vocab = self.vocab()
            train_idx, val_idx, _ = self.split()
            train = self.graphs(m["graphs"]["train"])
            val = self.graphs(m["graphs"]["val"])
            tests = {scenario: self.graphs(name) for scenario, name in m["graphs"]["tests"]}
            reports = [ReadReport(**{**r, "bad_examples": [tuple(e) for e in r["bad_examples"]]}) for r in m["reports"]]
            overlaps = Overlaps.from_dict(m.get("overlaps"))
        except Exception as exc:  # whatever a damaged file raises (BadZipFile, ValueError, KeyError...)
            self.problem = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            return None
        return Prepared(
            key=m["key"], directory=self.directory, vocab=vocab, train=train, val=val, tests=tests,
            reports=reports, train_idx=train_idx, val_idx=val_idx, settings=m["settings"], from_cache=True,
            overlaps=overlaps,
        )


def _safe_name(scenario: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", scenario)


def _build(layout, directory: Path, key: str, identity, settings, old: _Cache, progress: bool) -> Prepared:
    """Read every raw file once, build and store everything; the manifest goes last."""
    from kdgat.data.formats import read_frames
    from tqdm import tqdm

    window, stride = settings["window"], settings["stride"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)  # from here on the directory is incomplete

    overlaps = find_overlaps(layout)
    groups = [(role, name, [p for p in files if _relative(p, layout.root) not in overlaps.read_once])
              for role, name, files in file_groups(layout)]
    n_files = sum(len(files) for _, _, files in groups)
    files_bar = tqdm(total=n_files, desc=f"reading {Path(layout.root).name}", unit="file", disable=not progress)
    windows_bar = tqdm(desc="building graphs", unit="window", disable=not progress)
    reports: list[ReadReport] = []
    train_frames = 0
    built: dict[tuple[str, str], GraphSet] = {}
    try:
        for role, name, files in groups:
            parts = []
            for path in files:
                files_bar.set_postfix_str(f"{path.parent.name}/{path.name}")
                frames, report = read_frames(path)
                reports.append(report)
                train_frames += len(frames) if role == "train" else 0
                if report.bad_rows:
                    tqdm.write(_bad_rows_line(report), file=sys.stderr)
                parts.append(build_graphs(frames, None, window, stride))  # a window never spans two files
                del frames
                files_bar.update(1)
                windows_bar.update(len(parts[-1]))
            built[(role, name)] = GraphSet.concat(parts)
    finally:
        files_bar.close()
        windows_bar.close()

    all_train = GraphSet.concat([g for (role, _), g in built.items() if role == "train"])
    if len(all_train) == 0:
        raise KdgatError(
            f"{layout.root}: the train_* files hold {train_frames} frames in all, and no file has a whole "
            f"window of {window}; lower window or add data"
        )

    # Vocabulary and split are made once per key and kept across rebuilds of the graphs.
    split = _stored(old, SPLIT, old.split)
    if split is not None and split[2] == len(all_train):
        train_idx, val_idx = split[0], split[1]
    else:
        train_idx, val_idx = make_split(len(all_train), settings["val_fraction"], settings["seed"], labels=all_train.y)
    train_part = all_train.subset(train_idx)
    vocab = _stored(old, VOCAB, old.vocab)
    if vocab is None:
        vocab = Vocabulary(train_part.can_id)
    train = train_part.with_vocab(vocab)
    val = all_train.subset(val_idx).with_vocab(vocab)
    del all_train, train_part
    tests = {name: g.with_vocab(vocab) for (role, name), g in built.items() if role == "test"}
    for scenario, graphs in tests.items():
        if len(graphs) == 0:
            log.warning("test scenario %s has no whole window of %d frames; it will have no graphs", scenario, window)

    # tests as [scenario, file] pairs: a list keeps the scenarios' order through JSON
    graph_files = {"train": "train.npz", "val": "val.npz", "tests": []}
    for scenario in tests:
        name = f"test_{_safe_name(scenario)}.npz"
        if name in (f for _, f in graph_files["tests"]):
            raise KdgatError(f"test scenarios {scenario!r} and another map to the same cache file {name}; rename one")
        graph_files["tests"].append([scenario, name])

    vocab.save(directory / VOCAB)
    save_npz_atomic(directory / SPLIT, train_idx=train_idx, val_idx=val_idx, n=np.int64(len(train_idx) + len(val_idx)))
    train.save(directory / graph_files["train"])
    val.save(directory / graph_files["val"])
    for (scenario, name) in graph_files["tests"]:
        tests[scenario].save(directory / name)
    names = [VOCAB, SPLIT, graph_files["train"], graph_files["val"], *(name for _, name in graph_files["tests"])]
    manifest = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "settings": settings,
        "raw_files": identity,
        "graphs": graph_files,
        "files": {name: _file_entry(directory / name) for name in names},
        "reports": [dataclasses.asdict(r) for r in reports],
        "overlaps": overlaps.as_dict(),
        "counts": {
            "vocab": len(vocab),
            "train": len(train),
            "val": len(val),
            **{f"test_{s}": len(g) for s, g in tests.items()},
        },
    }
    write_json_atomic(directory / MANIFEST, manifest)
    return Prepared(
        key=key, directory=directory, vocab=vocab, train=train, val=val, tests=tests, reports=reports,
        train_idx=train_idx, val_idx=val_idx, settings=settings, from_cache=False, overlaps=overlaps,
    )


def _relative(path: Path, root) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _stored(cache: _Cache, name: str, read):
    """``read()`` if the old manifest lists ``name`` and the file is whole, else None."""
    if not cache.manifest or name not in cache.manifest["files"]:
        return None
    try:
        return read()
    except Exception:  # a damaged file is simply made again
        return None


def _digest(f: BinaryIO) -> tuple[int, str]:
    """(size, sha256) of an open file, read in 1 MiB blocks."""
    h, size = hashlib.sha256(), 0
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
        size += len(block)
    return size, h.hexdigest()


def _file_entry(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        size, digest = _digest(f)
    return {"size": size, "sha256": digest}


def _bad_rows_line(report: ReadReport) -> str:
    first = f"; first at line {report.bad_examples[0][0]}: {report.bad_examples[0][1]}" if report.bad_examples else ""
    total = report.frames + report.bad_rows
    return f"warning: {report.path}: skipped {report.bad_rows} unparsable row(s) of {total}{first}"


# --------------------------------------------------------------------------- train/val split


def make_split(
    n: int, val_fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train_idx, val_idx), both sorted, over ``n`` graphs.

    With ``labels`` the split is stratified: each class gives the same
    fraction (rounded) to validation, so a rare attack class is in both.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise KdgatError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(n, dtype=np.int64)]
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    val = []
    for members in groups:  # one iteration per class, not per graph
        shuffled = members[rng.permutation(len(members))]
        val.append(shuffled[: int(round(val_fraction * len(members)))])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64) if val else np.zeros(0, np.int64)
    mask = np.ones(n, bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx
