"""The can-train-and-test CSV reader on small hand-written files: exact values, bad rows with their line numbers,
line ends, column orders, and its fast, whole-file and line-by-line paths agreeing."""

from __future__ import annotations

import numpy as np
import pytest

from kdgat.data.formats import REGISTRY, detect_format, lines, read_frames
from kdgat.errors import KdgatError

from format_files import CTT_HEADER, payload_rows, write


def test_ctt_values_are_decoded_exactly(tmp_path):
    path = write(
        tmp_path,
        "a.csv",
        CTT_HEADER
        + "1672531200.001234,0C1,00F0A1B2C3D4E5F6,0\n"
        + "1672531200.002000,7ff,0aFf,1\n"
        + "1672531200.003500,000,,0\n"
        + "1672531200.004000,1ABCDEF0,01,1\n",
    )
    frames, report = read_frames(path)
    assert frames.can_id.tolist() == [0x0C1, 0x7FF, 0, 0x1ABCDEF0]
    assert frames.dlc.tolist() == [8, 2, 0, 1]
    np.testing.assert_array_equal(
        frames.payload,
        payload_rows([0x00, 0xF0, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6], [0x0A, 0xFF], [], [0x01]),
    )
    assert frames.label.tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(frames.timestamp, [1672531200.001234, 1672531200.002, 1672531200.0035, 1672531200.004],
                               rtol=0, atol=1e-6)
    assert frames.timestamp.dtype == np.float64 and frames.can_id.dtype == np.int32
    assert frames.dlc.dtype == np.uint8 and frames.payload.dtype == np.uint8 and frames.label.dtype == np.uint8
    assert (report.format, report.frames, report.injected, report.bad_rows) == ("can_train_and_test", 4, 2, 0)
    assert report.path == str(path)
    assert all(getattr(frames, name).flags.writeable for name in ("timestamp", "can_id", "dlc", "payload", "label"))


def test_ctt_ids_that_look_like_numbers_stay_hex(tmp_path):
    # a parser that guesses types would read 0100 as the decimal number 100
    path = write(tmp_path, "a.csv", CTT_HEADER + "1.0,0100,0102,0\n2.0,0200,0304,0\n")
    frames, _ = read_frames(path)
    assert frames.can_id.tolist() == [0x100, 0x200]
    np.testing.assert_array_equal(frames.payload, payload_rows([1, 2], [3, 4]))


def test_ctt_bad_rows_are_counted_with_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "bad.csv",
        CTT_HEADER  # line 1
        + "1672531200.000001,0C1,0102,0\n"  # 2 good
        + "\n"  # 3 blank: ignored
        + "1672531200.000002,0C1\n"  # 4 too few fields
        + "abc,0C1,00,0\n"  # 5 timestamp
        + "1672531200.000003,XYZ,00,0\n"  # 6 id
        + "1672531200.000004,0C1,ABC,0\n"  # 7 odd number of digits
        + "1672531200.000005,0C1,00,2\n"  # 8 attack
        + "1672531200.000006,0C1,001122334455667788,0\n"  # 9 nine bytes
        + "1672531200.000007,2C1,FF,1\n",  # 10 good
    )
    frames, report = read_frames(path)
    assert frames.can_id.tolist() == [0x0C1, 0x2C1]
    np.testing.assert_array_equal(frames.payload, payload_rows([1, 2], [0xFF]))
    assert report.frames == 2 and report.injected == 1
    assert report.bad_rows == 6
    lines = [line for line, _ in report.bad_examples]
    assert lines == [4, 5, 6, 7, 8]  # the first five
    reasons = dict(report.bad_examples)
    assert "fields" in reasons[4]
    assert "timestamp" in reasons[5] and "'abc'" in reasons[5]
    assert "XYZ" in reasons[6]
    assert "data_field" in reasons[7]
    assert "attack" in reasons[8]


def test_ctt_bad_row_line_numbers_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "CHUNK_LINES", 3)
    rows = [f"{i}.5,{i:03X},{i:02X},0\n" for i in range(1, 11)]
    rows[6] = "7.5,0G7,07,0\n"  # line 8
    path = write(tmp_path, "c.csv", "\n" + CTT_HEADER + "".join(rows))
    frames, report = read_frames(path)
    assert report.bad_rows == 1 and report.bad_examples[0][0] == 9  # blank line 1, header line 2
    assert frames.can_id.tolist() == [i for i in range(1, 11) if i != 7]
    assert frames.payload[:, 0].tolist() == [i for i in range(1, 11) if i != 7]


def test_ctt_blank_and_whitespace_lines_are_not_bad(tmp_path):
    path = write(tmp_path, "a.csv", "\n" + CTT_HEADER + "1.0,0C1,01,0\n   \n\n2.0,0C2,02,0\n\n")
    frames, report = read_frames(path)
    assert report.bad_rows == 0 and frames.can_id.tolist() == [0xC1, 0xC2]


def test_ctt_bom_and_crlf(tmp_path):
    path = write(tmp_path, "a.csv", ("\ufeff" + CTT_HEADER + "1.5,0C1,01,1\n").replace("\n", "\r\n").encode())
    assert detect_format(path) == "can_train_and_test"
    frames, report = read_frames(path)
    assert frames.can_id.tolist() == [0xC1] and frames.label.tolist() == [1] and report.bad_rows == 0


def test_ctt_fast_and_line_by_line_paths_agree(tmp_path, monkeypatch):
    good = "".join(f"{1000 + i}.25,{(i * 37) % 0x800:03X},{'AB' * (i % 9)},{i % 2}\n" for i in range(50))
    with monkeypatch.context() as m:  # a clean file must not need the slow path
        m.setattr(lines, "parse_block", None)
        clean, _ = read_frames(write(tmp_path, "clean.csv", CTT_HEADER + good))
    dirty, report = read_frames(write(tmp_path, "dirty.csv", CTT_HEADER + good + "x,y\n"))
    assert report.bad_rows == 1 and report.bad_examples == [(52, "expected 4 comma-separated fields, got 2")]
    for name in ("timestamp", "can_id", "dlc", "payload", "label"):
        np.testing.assert_array_equal(getattr(clean, name), getattr(dirty, name))


def test_ctt_a_clean_file_is_parsed_whole_and_agrees_with_the_blocks(tmp_path, monkeypatch):
    ctt = REGISTRY["can_train_and_test"]
    header = "attack,timestamp,data_field,arbitration_id\n"  # any column order
    good = "".join(f"{i % 2},{1000 + i}.25,{'0B' * (i % 9)},{(i * 37) % 0x800:03x}\n" for i in range(3000))
    path = write(tmp_path, "clean.csv", header + good)
    with monkeypatch.context() as m:  # one pandas call: no block is read
        m.setattr(lines, "parse_file", None)
        whole, _ = read_frames(path)
    with monkeypatch.context() as m:
        m.setattr(ctt, "WHOLE_FILE_BYTES", 0)  # larger than the limit: by blocks
        by_blocks, _ = read_frames(path)
    assert len(whole) == 3000 and whole.can_id[3] == 111 and whole.dlc[3] == 3 and whole.payload[3, 2] == 0x0B
    for name in ("timestamp", "can_id", "dlc", "payload", "label"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(by_blocks, name), err_msg=name)


@pytest.mark.parametrize("header", ["timestamp,arbitration_id,data_field,attack",
                                    "timestamp,arbitration_id,attack,data_field"])
@pytest.mark.parametrize("whole", [True, False])
def test_ctt_a_row_missing_its_last_field_is_bad_whatever_the_column_order(tmp_path, monkeypatch, header, whole):
    if not whole:
        monkeypatch.setattr(REGISTRY["can_train_and_test"], "WHOLE_FILE_BYTES", 0)
    names = header.split(",")
    row = {"timestamp": "1.5", "arbitration_id": "0C1", "data_field": "0102", "attack": "0"}
    full = ",".join(row[n] for n in names)
    short = ",".join(row[n] for n in names[:-1])  # a missing payload would read as an empty one
    frames, report = read_frames(write(tmp_path, "a.csv", f"{header}\n{full}\n{short}\n{full}\n"))
    assert len(frames) == 2
    assert report.bad_examples == [(3, "expected 4 comma-separated fields, got 3")]


@pytest.mark.parametrize("terminator", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("before", ["", "\ufeff", "{t}{t}"])
def test_ctt_every_row_is_read_whatever_the_line_ends_and_what_comes_before_the_header(tmp_path, terminator,
                                                                                     before):
    rows = [f"{1000 + i}.5,{i % 0x800:03X},{'AB' * (i % 9)},{i % 2}" for i in range(500)]
    text = before.format(t=terminator) + CTT_HEADER.strip() + terminator + terminator.join(rows) + terminator
    frames, report = read_frames(write(tmp_path, "a.csv", text.encode()))
    # pandas counts two '\r'-only blank lines before the header as one: its parse must not be taken then
    assert report.bad_rows == 0 and len(frames) == 500
    assert frames.timestamp[[0, -1]].tolist() == [1000.5, 1499.5] and frames.can_id[-1] == 499


def test_ctt_pieces_keep_ids_and_payloads_of_a_row_together_however_they_are_chunked(monkeypatch):
    import pyarrow as pa

    ctt = REGISTRY["can_train_and_test"]
    monkeypatch.setattr(ctt, "PIECE_ROWS", 4)
    ids = [f"{i:03X}" for i in range(10)]
    data = [f"{i:02X}" for i in range(10)]
    same = ctt._pieces(pa.chunked_array([ids[:6], ids[6:]]), pa.chunked_array([data[:6], data[6:]]))
    other = ctt._pieces(pa.chunked_array([ids[:3], ids[3:]]), pa.chunked_array([data[:7], data[7:]]))
    assert [len(i) for _, i, _ in same] == [6, 4]  # pandas' own pieces, as they are
    assert [len(i) for _, i, _ in other] == [4, 4, 2]  # cut again, PIECE_ROWS rows each
    for pieces in (same, other):
        rows = [(start + k, i[k].as_py(), d[k].as_py()) for start, i, d in pieces for k in range(len(i))]
        assert rows == [(k, ids[k], data[k]) for k in range(10)]


def test_ctt_without_header_is_an_error(tmp_path):
    path = write(tmp_path, "noheader.csv", "1.5,0C1,01,0\n")
    with pytest.raises(KdgatError, match="noheader.csv.*timestamp,arbitration_id,data_field,attack"):
        read_frames(path, "can_train_and_test")


def test_ctt_header_only_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, "empty.csv", CTT_HEADER)
    with pytest.raises(KdgatError, match="empty.csv.*no usable CAN frames"):
        read_frames(path)
