"""The prepared dataset: per-file windows, a stored split and vocabulary, a cache that
notices changes and damage, and two jobs preparing at once. Plus the atomic-write helpers."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
from pathlib import Path

import filelock
import numpy as np
import pytest

import kdgat.data.dataset as dataset_mod
from kdgat.atomic import atomic_write, locked, write_text_atomic
from kdgat.data.dataset import make_split, prepare
from kdgat.data.identity import cache_key
from kdgat.data.formats import read_frames, write_frames
from kdgat.data.graphset import GraphSet
from kdgat.data.vocabulary import Vocabulary
from kdgat.data.windows import build_graphs, count_windows
from kdgat.errors import KdgatError

WINDOW = 70  # not a divisor of the files' lengths, so windows spanning files would show
FIELDS = ("node_id", "can_id", "x", "edge_index", "edge_attr", "y", "node_ptr", "edge_ptr")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    from kdgat.data.synth import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "ds", frames=6000, seed=1, progress=False)


@pytest.fixture
def data(synthetic, tmp_path) -> Path:
    """A private copy (mtimes kept) that a test may change."""
    return Path(shutil.copytree(synthetic, tmp_path / "ds"))


def same(a: GraphSet, b: GraphSet) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def digest(p) -> dict:
    """What two preparations must agree on, in a picklable form."""
    return {
        "key": p.key,
        "vocab": p.vocab.ids.tolist(),
        "split": (p.train_idx.tolist(), p.val_idx.tolist()),
        "graphs": {name: [getattr(g, f).tobytes() for f in FIELDS] for name, g in
                   [("train", p.train), ("val", p.val), *p.tests.items()]},
    }  # fmt: skip


# --------------------------------------------------------------------------- what is built


def test_prepare_windows_each_file_and_splits_once(data, tmp_path):
    p = prepare(data, tmp_path / "cache", window=WINDOW, stride=WINDOW, val_fraction=0.25, seed=3, progress=False)
    assert not p.from_cache
    per_file = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        (path,) = folder.iterdir()
        frames, _ = read_frames(path)
        per_file[folder.name] = frames
    train_frames = [per_file["train_01_attack_free"], per_file["train_02_with_attacks"]]

    # a window never spans two files: counts per file, not of the files joined together
    n_train = sum(count_windows(len(f), WINDOW, WINDOW) for f in train_frames)
    assert count_windows(sum(len(f) for f in train_frames), WINDOW, WINDOW) > n_train
    assert len(p.train) + len(p.val) == n_train
    assert sorted(np.r_[p.train_idx, p.val_idx].tolist()) == list(range(n_train))
    assert abs(len(p.val) - 0.25 * n_train) <= 2

    # the split graphs are the file-by-file windows, indexed by the stored split
    everything = GraphSet.concat([build_graphs(f, p.vocab, WINDOW, WINDOW) for f in train_frames])
    assert same(p.train, everything.subset(p.train_idx))
    assert same(p.val, everything.subset(p.val_idx))
    # the vocabulary comes from the train split only; the unknown slot is 0
    assert p.vocab == Vocabulary(everything.subset(p.train_idx).can_id)
    assert set(p.tests) == {"dos", "fuzzing", "spoofing", "masquerade"}
    assert list(p.tests) == ["dos", "fuzzing", "spoofing", "masquerade"]  # the folders' order
    assert same(p.tests["dos"], build_graphs(per_file["test_01_dos"], p.vocab, WINDOW, WINDOW))
    fuzz = p.tests["fuzzing"]
    assert (fuzz.node_id == 0).any() and (fuzz.can_id[fuzz.node_id == 0] >= 0).all()  # random ids: unknown
    assert p.tests["dos"].y.any() and not p.tests["masquerade"].y.all()
    assert len(p.reports) == 6 and all(r.bad_rows == 0 for r in p.reports)

    stored = sorted(f.name for f in p.directory.iterdir())
    assert stored == sorted(["manifest.json", "vocab.json", "split.npz", "train.npz", "val.npz", "test_dos.npz",
                             "test_fuzzing.npz", "test_spoofing.npz", "test_masquerade.npz"])
    assert p.directory == (tmp_path / "cache" / p.key)


def test_second_prepare_loads_stored_results_without_rebuilding(data, tmp_path, monkeypatch):
    first = prepare(data, tmp_path / "cache", window=WINDOW, progress=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("rebuilt although the cache was complete")

    monkeypatch.setattr(dataset_mod, "build_graphs", forbidden)
    monkeypatch.setattr(dataset_mod, "make_split", forbidden)
    monkeypatch.setattr("kdgat.data.formats.read_frames", forbidden)
    again = prepare(data, tmp_path / "cache", window=WINDOW, progress=False)
    assert again.from_cache
    assert digest(again) == digest(first)
    assert [r.path for r in again.reports] == [r.path for r in first.reports]


def test_split_depends_on_the_seed_only(data, tmp_path):
    a = prepare(data, tmp_path / "c1", window=WINDOW, seed=0, progress=False)
    b = prepare(data, tmp_path / "c2", window=WINDOW, seed=0, progress=False)
    c = prepare(data, tmp_path / "c1", window=WINDOW, seed=1, progress=False)
    assert a.key == b.key and digest(a) == digest(b)  # same settings, fresh cache: same result
    assert c.key != a.key
    assert not np.array_equal(a.val_idx, c.val_idx)


# --------------------------------------------------------------------------- invalidation


def test_cache_key_follows_raw_files_and_settings(data, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(data, cache, window=WINDOW, progress=False)
    assert cache_key(data, window=WINDOW) == first.key
    assert cache_key(data, window=WINDOW, stride=35) != first.key
    assert cache_key(data, window=WINDOW, val_fraction=0.3) != first.key

    # touching a raw file (same bytes, new mtime) is a new key and a rebuild; the old entry stays
    raw = data / "test_01_dos" / "dos.csv"
    st = raw.stat()
    os.utime(raw, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = prepare(data, cache, window=WINDOW, progress=False)
    assert touched.key != first.key and not touched.from_cache
    assert (cache / first.key / "manifest.json").exists()

    # rewritten with other content: another key, and the graphs follow the new file
    frames, _ = read_frames(raw)
    write_frames(raw, frames.take(slice(0, 2 * WINDOW)), "can_train_and_test")
    rewritten = prepare(data, cache, window=WINDOW, progress=False)
    assert rewritten.key not in (first.key, touched.key)
    assert len(rewritten.tests["dos"]) == 2

    # a changed setting is a new key as well
    other = prepare(data, cache, window=50, progress=False)
    assert other.key != rewritten.key and not other.from_cache
    assert len(list(cache.glob("*/manifest.json"))) == 4


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_damaged_cache_is_rebuilt_not_loaded(data, tmp_path, caplog, damage):
    cache = tmp_path / "cache"
    first = prepare(data, cache, window=WINDOW, progress=False)
    target = first.directory / ("manifest.json" if damage == "manifest" else "train.npz")
    raw = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(raw[: len(raw) // 3])
    elif damage == "flip":  # same size, one byte changed: only the checksum can tell
        target.write_bytes(raw[:-100] + bytes([raw[-100] ^ 0xFF]) + raw[-99:])
    elif damage == "delete":
        target.unlink()
    else:
        target.write_text('{"files": ')

    with caplog.at_level(logging.WARNING, logger="kdgat.data.dataset"):
        again = prepare(data, cache, window=WINDOW, progress=False)
    assert not again.from_cache
    assert digest(again) == digest(first)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rebuilding" in warnings[0]
    assert ("manifest" if damage == "manifest" else "train.npz") in warnings[0]
    assert prepare(data, cache, window=WINDOW, progress=False).from_cache  # whole again


def test_rebuild_reuses_the_stored_split_and_vocabulary(data, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = prepare(data, cache, window=WINDOW, progress=False)
    (first.directory / "val.npz").write_bytes(b"not a zip file")

    def forbidden(*args, **kwargs):
        raise AssertionError("the stored split should have been reused")

    monkeypatch.setattr(dataset_mod, "make_split", forbidden)
    again = prepare(data, cache, window=WINDOW, progress=False)
    assert not again.from_cache and digest(again) == digest(first)


def test_no_whole_training_window_is_a_clear_error(data, tmp_path):
    with pytest.raises(KdgatError, match="window"):
        prepare(data, tmp_path / "cache", window=5000, progress=False)


def test_bad_rows_are_reported(data, tmp_path, capsys):
    raw = data / "train_01_attack_free" / "attack_free.csv"
    lines = raw.read_text().splitlines()
    lines.insert(10, "this,is,not,a frame")
    raw.write_text("\n".join(lines) + "\n")
    p = prepare(data, tmp_path / "cache", window=WINDOW, progress=False)
    (report,) = [r for r in p.reports if r.path.endswith("attack_free.csv")]
    assert report.bad_rows == 1
    err = capsys.readouterr().err
    assert "attack_free.csv" in err and "skipped 1 unparsable row" in err and "line 11" in err


def test_identical_files_are_read_once_and_train_test_copies_are_leakage(data, tmp_path, caplog):
    clean = prepare(data, tmp_path / "clean", window=WINDOW, progress=False)
    shutil.copy2(data / "train_01_attack_free" / "attack_free.csv", data / "train_02_with_attacks" / "copy.csv")
    shutil.copy2(data / "test_01_dos" / "dos.csv", data / "train_02_with_attacks" / "dos_again.csv")
    with caplog.at_level(logging.WARNING, logger="kdgat.data.dataset"):
        p = prepare(data, tmp_path / "cache", window=WINDOW, progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any("train_02_with_attacks/copy.csv has the same bytes as train_01_attack_free/attack_free.csv: "
               "read once" in m for m in messages), messages
    assert not any("copy.csv" in r.path for r in p.reports)  # never read, so its windows are in one place
    # dos.csv is both trained on and tested on: read for each, and said loudly
    leak = [m for m in messages if "LEAKAGE" in m]
    assert len(leak) == 1 and "train_02_with_attacks/dos_again.csv (training) and test_01_dos/dos.csv (test)" in leak[0]
    assert len(p.train) + len(p.val) > len(clean.train) + len(clean.val)
    assert np.array_equal(p.tests["dos"].y, clean.tests["dos"].y)  # the test scenario keeps its file
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kdgat.data.dataset"):
        again = prepare(data, tmp_path / "cache", window=WINDOW, progress=False)
    assert again.from_cache and sum("LEAKAGE" in r.getMessage() for r in caplog.records) == 1  # every stage's log


# --------------------------------------------------------------------------- concurrency


def _prepare_in_child(data: str, cache: str, barrier, out) -> None:
    barrier.wait()  # both start together
    p = prepare(data, cache, window=WINDOW, progress=False)
    out.put((p.from_cache, digest(p)))


def test_two_processes_prepare_once_and_agree(data, tmp_path):
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_prepare_in_child, args=(str(data), str(tmp_path / "cache"), barrier, out))
             for _ in range(2)]  # fmt: skip
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    (built_flags, digests) = zip(*results)
    assert sorted(built_flags) == [False, True]  # one built it, the other waited and loaded it
    assert digests[0] == digests[1]
    again = prepare(data, tmp_path / "cache", window=WINDOW, progress=False)
    assert again.from_cache and digest(again) == digests[0]
    assert not list((tmp_path / "cache").rglob("*.tmp"))


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "model.bin"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
    with atomic_write(target, "wb") as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_lock_times_out_with_a_clear_error(tmp_path):
    target = tmp_path / "key"
    holder = filelock.FileLock(str(tmp_path / "key.lock"))
    with holder:
        with pytest.raises(KdgatError, match="key.lock"):
            with locked(target, timeout=0.2):
                pass
    with locked(target, timeout=1):
        pass


# --------------------------------------------------------------------------- split


def test_split_is_seeded_disjoint_and_stratified():
    labels = np.r_[np.zeros(900, int), np.ones(100, int)]
    tr, va = make_split(1000, 0.2, seed=0, labels=labels)
    tr2, va2 = make_split(1000, 0.2, seed=0, labels=labels)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    _, va3 = make_split(1000, 0.2, seed=1, labels=labels)
    assert not np.array_equal(va, va3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 1000
    assert labels[va].sum() == 20 and len(va) == 200  # each class gives 20% to validation
    tr4, va4 = make_split(10, 0.3, seed=5)
    assert len(va4) == 3 and sorted(np.r_[tr4, va4].tolist()) == list(range(10))
    with pytest.raises(KdgatError):
        make_split(10, 1.0, seed=0)
