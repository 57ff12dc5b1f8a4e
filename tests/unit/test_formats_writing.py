"""Writing CAN files: the real formats' text, round trips through every format, attack-free formats, whole-file
replacement, and a vectorised writer."""

from __future__ import annotations

import numpy as np
import pytest

from kdgat.data.formats import FORMATS, read_frames, write_frames
from kdgat.data.frames import Frames

from format_files import CTT_HEADER, sample_frames


def test_written_text_is_the_real_format(tmp_path):
    frames = sample_frames()
    write_frames(tmp_path / "a.csv", frames, "can_train_and_test")
    assert (tmp_path / "a.csv").read_text() == (
        CTT_HEADER
        + "1672531200.001234,0C1,00F0A1B2C3D4E5F6,0\n"
        + "1672531200.500000,1ABCDEF0,0520,1\n"
        + "0.000001,007,,1\n"
    )
    write_frames(tmp_path / "b.csv", frames, "hcrl_csv")
    assert (tmp_path / "b.csv").read_text() == (
        "1672531200.001234,00c1,8,00,f0,a1,b2,c3,d4,e5,f6,R\n"
        "1672531200.500000,1abcdef0,2,05,20,T\n"
        "0.000001,0007,0,T\n"
    )
    frames.label[:] = 0
    write_frames(tmp_path / "c.txt", frames, "hcrl_log")
    assert (tmp_path / "c.txt").read_text() == (
        "Timestamp: 1672531200.001234        ID: 00c1    000    DLC: 8    00 f0 a1 b2 c3 d4 e5 f6\n"
        "Timestamp: 1672531200.500000        ID: 1abcdef0    000    DLC: 2    05 20\n"
        "Timestamp: 0.000001        ID: 0007    000    DLC: 0\n"
    )


def random_frames(n: int, seed: int = 0, attacks: bool = True) -> Frames:
    rng = np.random.default_rng(seed)
    dlc = rng.integers(0, 9, n).astype(np.uint8)
    payload = rng.integers(0, 256, (n, 8)).astype(np.uint8)
    payload[np.arange(8)[None, :] >= dlc[:, None]] = 0
    can_id = rng.integers(0, 0x800, n).astype(np.int32)
    can_id[::7] = rng.integers(0, 0x1FFFFFFF, len(can_id[::7]))
    label = (rng.random(n) < 0.3).astype(np.uint8) if attacks else np.zeros(n, np.uint8)
    timestamp = np.round(1478198376.0 + np.cumsum(rng.random(n) * 1e-3), 6)
    return Frames(timestamp, can_id, dlc, payload, label)


ATTACK_FREE = ("hcrl_log", "hcrl_csv_noflag", "hcrl_csv_spaced")  # formats whose rows have no label


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    frames = random_frames(500, attacks=fmt not in ATTACK_FREE)
    path = tmp_path / f"round.{fmt}"
    write_frames(path, frames, fmt)
    back, report = read_frames(path)
    assert report.format == fmt and report.bad_rows == 0 and report.frames == 500
    for name in ("can_id", "dlc", "payload", "label"):
        np.testing.assert_array_equal(getattr(back, name), getattr(frames, name), err_msg=name)
    np.testing.assert_allclose(back.timestamp, frames.timestamp, rtol=0, atol=5e-7)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


@pytest.mark.parametrize("fmt", ATTACK_FREE)
def test_attack_free_formats_cannot_hold_injected_frames(tmp_path, fmt):
    with pytest.raises(ValueError, match="attack-free"):
        write_frames(tmp_path / "a.txt", sample_frames(), fmt)
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("old\n")
    with pytest.raises(ValueError):
        bad = sample_frames()
        bad.dlc[0] = 9
        write_frames(path, bad, "can_train_and_test")
    assert path.read_text() == "old\n"
    write_frames(path, sample_frames(), "can_train_and_test")
    assert read_frames(path)[1].frames == 3


def test_write_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown CAN file format"):
        write_frames(tmp_path / "a.csv", sample_frames(), "excel")


def test_write_is_vectorised(tmp_path):
    import time

    frames = random_frames(200_000)
    start = time.perf_counter()
    write_frames(tmp_path / "big.csv", frames, "can_train_and_test")
    assert time.perf_counter() - start < 2.0  # a Python loop per frame takes several seconds
