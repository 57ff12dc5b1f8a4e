"""The HCRL Survival dataset's two extra row styles, and every format's two paths (fast and exact)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from kdgat.data.formats import (FORMATS, blocks, count_frames, detect_format, head_problem, lines, read_frames,
                                scan, write_frames)
from format_files import payload_rows, write
from kdgat.errors import KdgatError

ATTACK_FREE = ("hcrl_log", "hcrl_csv_noflag", "hcrl_csv_spaced")


def test_spaced_rows_as_soul_and_spark_write_them(tmp_path):
    path = write(tmp_path, "FreeDrivingData_20180112_Soul.txt",
                 "1514703000.371009,00C1,8,47 7C 0C E4 5E 3D B0 28\r\n"
                 "1514703000.371200,0153,2,00 21\r\n"
                 "1514703000.371300,0160,0,\r\n"
                 "1514703000.371400,05f0,1,ab\r\n")
    assert detect_format(path) == "hcrl_csv_spaced"
    frames, report = read_frames(path)
    assert (report.format, report.frames, report.injected, report.bad_rows) == ("hcrl_csv_spaced", 4, 0, 0)
    assert frames.can_id.tolist() == [0xC1, 0x153, 0x160, 0x5F0]
    assert frames.dlc.tolist() == [8, 2, 0, 1]
    np.testing.assert_array_equal(
        frames.payload, payload_rows([0x47, 0x7C, 0x0C, 0xE4, 0x5E, 0x3D, 0xB0, 0x28], [0x00, 0x21], [], [0xAB]))
    assert frames.label.tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(frames.timestamp[0], 1514703000.371009, rtol=0, atol=1e-6)


def test_rows_without_a_flag_as_sonata_writes_them(tmp_path):
    path = write(tmp_path, "FreeDrivingData_20180112_Sonata.txt",
                 "1513918916.946519,0260,8,06,25,05,30,ff,cf,71,55\n"
                 "1513918916.946600,0153,2,00,21\n"
                 "1513918916.946700,0140,0\n")
    assert detect_format(path) == "hcrl_csv_noflag"
    frames, report = read_frames(path)
    assert (report.frames, report.injected, report.bad_rows) == (3, 0, 0)
    assert frames.dlc.tolist() == [8, 2, 0]
    np.testing.assert_array_equal(frames.payload, payload_rows([6, 0x25, 5, 0x30, 0xFF, 0xCF, 0x71, 0x55], [0, 0x21], []))


@pytest.mark.parametrize("name, text, examples", [
    ("hcrl_csv_spaced.txt",
     "1.0,00C1,2,47 7C\n"
     "2.0,00C1,8,47 7C 0C E4 5E 3D B0\n"  # 2: a byte short (a cut line)
     "3.0,00C1,2,4 7C\n"  # 3: one digit
     "4.0,00C1,2,47,7C\n"  # 4: commas, not spaces
     "5.0,00C1\n",  # 5: cut
     [(2, "DLC 8 but 7 data bytes"), (3, "data bytes '4 7C' are not two-digit hex bytes"),
      (4, "DLC 2 needs 4 comma-separated fields (the data bytes space-separated in the last), got 5"),
      (5, "expected at least 3 comma-separated fields, got 2")]),
    ("hcrl_csv_noflag.txt",
     "1.0,0153,2,00,21\n"
     "2.0,0153,8,06,25,05,30,ff,cf,71,5\n"  # 2: cut in its last byte
     "3.0,0153,2,00,21,R\n"  # 3: a flag
     "4.0,0153,2,00\n"  # 4: a byte short
     "x,0153,1,00\n",  # 5: timestamp
     [(2, "data bytes '06,25,05,30,ff,cf,71,5' are not two-digit hex bytes"), (3, "DLC 2 needs 5 fields, got 6"),
      (4, "DLC 2 needs 5 fields, got 4"), (5, "timestamp 'x' is not a number")]),
])
def test_bad_rows_of_the_new_styles_are_named_by_line(tmp_path, name, text, examples):
    frames, report = read_frames(write(tmp_path, name, text), name.replace(".txt", ""))
    assert len(frames) == 1 and report.bad_rows == len(examples)
    assert report.bad_examples == examples


def test_styles_are_told_apart_by_content(tmp_path):
    spaced = write(tmp_path, "a.csv", "1.0,0153,2,00 21\n2.0,0153,8,00 01 02 03 04 05 06 07\n")
    noflag = write(tmp_path, "b.txt", "1.0,0153,2,00,21\n2.0,0153,8,00,01,02,03,04,05,06,07\n")
    flagged = write(tmp_path, "c.txt", "1.0,0153,2,00,21,R\n2.0,0153,8,00,01,02,03,04,05,06,07,T\n")
    assert [detect_format(p) for p in (spaced, noflag, flagged)] == ["hcrl_csv_spaced", "hcrl_csv_noflag", "hcrl_csv"]
    assert all(head_problem(p) is None for p in (spaced, noflag, flagged))
    bad = write(tmp_path, "d.txt", "1.0,0153,2,0g 21\n" * 3)
    assert "no usable CAN frame" in head_problem(bad) and "hcrl_csv_spaced" in head_problem(bad)


# ---- every format: blocks, the fast path and the exact path agree -------------------------------------------


def random_frames(n: int, attacks: bool, seed: int = 0):
    from kdgat.data.frames import Frames

    rng = np.random.default_rng(seed)
    dlc = rng.integers(0, 9, n).astype(np.uint8)
    payload = rng.integers(0, 256, (n, 8)).astype(np.uint8)
    payload[np.arange(8)[None, :] >= dlc[:, None]] = 0
    label = (rng.random(n) < 0.3).astype(np.uint8) if attacks else np.zeros(n, np.uint8)
    timestamp = np.round(1478198376.0 + np.cumsum(rng.random(n) * 1e-3), 6)
    return Frames(timestamp, rng.integers(0, 0x800, n).astype(np.int32), dlc, payload, label)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_clean_file_takes_the_fast_path_and_a_bad_row_only_costs_its_block(tmp_path, monkeypatch, fmt):
    frames = random_frames(3000, attacks=fmt not in ATTACK_FREE)
    write_frames(tmp_path / "clean", frames, fmt)
    with monkeypatch.context() as m:
        m.setattr(lines, "parse_block", None)  # a clean file never goes line by line
        m.setattr(blocks, "BLOCK_BYTES", 4096)
        clean, report = read_frames(tmp_path / "clean")
    assert report.bad_rows == 0 and len(clean) == 3000
    text = (tmp_path / "clean").read_bytes().splitlines(keepends=True)
    text.insert(2000, b"not a row\n")
    exact = []
    real_parse_block = lines.parse_block
    monkeypatch.setattr(lines, "parse_block", lambda block, parse: exact.append(block) or real_parse_block(block, parse))
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 4096)
    dirty, report = read_frames(write(tmp_path, "dirty", b"".join(text)))
    assert report.bad_rows == 1 and report.bad_examples[0][0] == 2001
    assert len(exact) == 1  # only the block holding the bad row
    for name in ("timestamp", "can_id", "dlc", "payload", "label"):
        np.testing.assert_array_equal(getattr(dirty, name), getattr(frames, name), err_msg=name)


@pytest.mark.parametrize("terminator", [b"\n", b"\r\n", b"\r"])
def test_block_offsets_and_line_numbers_are_exact_across_blocks(tmp_path, monkeypatch, terminator):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 100)
    rows = [f"{i}.5,{i % 0x7FF:04x},1,{i % 256:02x},{'T' if i % 3 == 0 else 'R'}".encode() for i in range(400)]
    rows[123] = b"broken"
    data = blocks.BOM + terminator.join(rows)  # the last line has no terminator
    path = write(tmp_path, "a.csv", data)
    parts = list(scan(path))
    assert len(parts) > 10
    assert sum(len(p.code) for p in parts) == 400 and sum(p.bad for p in parts) == 1
    starts = [len(blocks.BOM)] + [len(blocks.BOM) + sum(len(r) + len(terminator) for r in rows[:i]) for i in range(1, 400)]
    at = 0
    for part in parts:
        assert part.first_line == at + 1 and part.offset == starts[at]
        at += len(part.code)
    assert parts[-1].offset + parts[-1].size == len(data)
    bad = next(p for p in parts if p.bad)
    assert bad.examples[0][0] == 124 and bad.code[123 - (bad.first_line - 1)] != 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_counting_a_file_reports_as_reading_it_and_hashes_it(tmp_path, fmt):
    frames = random_frames(2000, attacks=fmt not in ATTACK_FREE, seed=1)
    write_frames(tmp_path / "f", frames, fmt)
    path = write(tmp_path, "g", (tmp_path / "f").read_bytes() + b"1.0,bad\n")
    digest = hashlib.sha256()
    counted = count_frames(path, digest=digest)
    assert counted == read_frames(path)[1]
    assert (counted.frames, counted.bad_rows) == (2000, 1)
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_counting_a_file_without_a_usable_row_is_an_error(tmp_path):
    with pytest.raises(KdgatError, match="h.csv: no usable CAN frames in this can_train_and_test file "
                                         r"\(it has a header and no rows\)"):
        count_frames(write(tmp_path, "h.csv", "timestamp,arbitration_id,data_field,attack\n"))
    with pytest.raises(KdgatError, match=r"1 bad rows; first at line 1"):
        count_frames(write(tmp_path, "b.txt", "1.0,0153,9,00,R\n"), "hcrl_csv")
