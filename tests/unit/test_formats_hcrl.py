"""The two HCRL readers, CSV rows that follow their DLC and the text log, on small hand-written files; and a
file of any format with only bad rows is an error."""

from __future__ import annotations

import numpy as np
import pytest

from kdgat.data.formats import read_frames
from kdgat.errors import KdgatError

from format_files import CTT_HEADER, LOG_LINE, payload_rows, write


def test_hcrl_csv_rows_follow_their_dlc(tmp_path):
    path = write(
        tmp_path,
        "Fuzzy_dataset.csv",
        "1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R\n"
        "1478198376.389636,0350,2,05,20,T\n"
        "1478198376.389800,0000,0,T\n"
        "1478198376.390000,018f,1,fe,R\n",
    )
    frames, report = read_frames(path)
    assert report.format == "hcrl_csv"
    assert frames.can_id.tolist() == [0x316, 0x350, 0x000, 0x18F]
    assert frames.dlc.tolist() == [8, 2, 0, 1]
    np.testing.assert_array_equal(
        frames.payload,
        payload_rows([0x05, 0x21, 0x68, 0x09, 0x21, 0x21, 0x00, 0x6F], [0x05, 0x20], [], [0xFE]),
    )
    assert frames.label.tolist() == [0, 1, 1, 0]  # R normal, T injected
    assert report.injected == 2 and report.bad_rows == 0
    np.testing.assert_allclose(frames.timestamp[:2], [1478198376.389427, 1478198376.389636], rtol=0, atol=1e-6)


def test_hcrl_csv_bad_rows(tmp_path):
    path = write(
        tmp_path,
        "a.csv",
        "1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R\n"  # 1 good
        "1478198376.389636,0350,2,05,T\n"  # 2 DLC 2 but one byte
        "\n"  # 3 blank
        "1478198376.389700,0350,2,05,zz,R\n"  # 4 bad hex byte
        "1478198376.389800,0350,2,05,20\n"  # 5 no flag, so one field short
        "1478198376.389900,0350,9,01,02,03,04,05,06,07,08,09,R\n"  # 6 DLC over 8
        "time,0350,1,05,R\n"  # 7 timestamp
        "1478198376.390000,03x0,1,05,R\n"  # 8 id
        "1478198376.390100,0350,2,05,20,T\n",  # 9 good
    )
    frames, report = read_frames(path)
    assert frames.can_id.tolist() == [0x316, 0x350] and frames.label.tolist() == [0, 1]
    assert report.bad_rows == 6
    assert [line for line, _ in report.bad_examples] == [2, 4, 5, 6, 7]
    reasons = dict(report.bad_examples)
    assert reasons[2] == reasons[5] == "DLC 2 needs 6 fields, got 5"
    assert "zz" in reasons[4]
    assert reasons[6] == "DLC 9 is over 8"
    assert "time" in reasons[7]


def test_hcrl_csv_missing_flag_is_reported(tmp_path):
    # the field count matches DLC 1 plus a flag, but the flag is not R or T
    path = write(tmp_path, "a.csv", "1.0,0350,1,05,R\n2.0,0350,1,05,X\n")
    frames, report = read_frames(path, "hcrl_csv")
    assert len(frames) == 1 and report.bad_examples == [(2, "last field 'X' is not the flag R or T")]


def test_hcrl_log_lines(tmp_path):
    path = write(
        tmp_path,
        "Attack_free_dataset.txt",
        LOG_LINE
        + "Timestamp: 1479121434.850423        ID: 02c0    000    DLC: 0\n"
        + "\n   \n"
        + "  Timestamp: 1479121434.850661        ID: 0130    000    DLC: 2    ff 7f\n",
    )
    frames, report = read_frames(path)
    assert report.format == "hcrl_log" and report.bad_rows == 0 and report.injected == 0
    assert frames.can_id.tolist() == [0x350, 0x2C0, 0x130]
    assert frames.dlc.tolist() == [8, 0, 2]
    np.testing.assert_array_equal(
        frames.payload, payload_rows([0x05, 0x28, 0x84, 0x66, 0x6D, 0x00, 0x00, 0xA2], [], [0xFF, 0x7F])
    )
    assert frames.label.tolist() == [0, 0, 0]
    np.testing.assert_allclose(frames.timestamp[0], 1479121434.850202, rtol=0, atol=1e-6)


def test_hcrl_log_bad_rows(tmp_path):
    path = write(
        tmp_path,
        "a.txt",
        LOG_LINE  # 1
        + "Timestamp: 1479121434.9        ID: 0350    000    DLC: 2    05\n"  # 2 one byte short
        + "this is not a log line\n"  # 3
        + "Timestamp: 1479121435.0        ID: 0350    000    DLC: 1    g5\n"  # 4 bad byte
        + LOG_LINE,  # 5
    )
    frames, report = read_frames(path)
    assert len(frames) == 2 and report.bad_rows == 3
    assert report.bad_examples[0] == (2, "DLC 2 but 1 data bytes")
    assert [line for line, _ in report.bad_examples] == [2, 3, 4]


@pytest.mark.parametrize(
    "fmt, text, reason",
    [
        ("can_train_and_test", CTT_HEADER + "\nnope,0C1,00,0\n1.0,0C1,00,7\n", "line 3: timestamp 'nope'"),
        ("hcrl_csv", "1.0,0316,8,05,R\n", "line 1: DLC 8 needs 12 fields, got 5"),
        ("hcrl_log", "Timestamp: x        ID: 0350    000    DLC: 0\n", "line 1: timestamp 'x'"),
    ],
)
def test_a_file_with_only_bad_rows_is_an_error(tmp_path, fmt, text, reason):
    path = write(tmp_path, "only_bad.dat", text)
    with pytest.raises(KdgatError) as err:
        read_frames(path, fmt)
    message = str(err.value)
    assert str(path) in message and reason in message and "\n" not in message
