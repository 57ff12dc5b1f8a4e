"""Readers and writers of the three real CAN file formats, on small hand-written files."""

from __future__ import annotations

import numpy as np
import pytest

from kdgat.data.formats import FORMATS, REGISTRY, detect_format, head_problem, lines, read_frames, write_frames
from kdgat.data.frames import Frames
from kdgat.errors import KdgatError

CTT_HEADER = "timestamp,arbitration_id,data_field,attack\n"


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def payload_rows(*rows: list[int]) -> np.ndarray:
    out = np.zeros((len(rows), 8), np.uint8)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# ---- can-train-and-test -----------------------------------------------------


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


# ---- HCRL CSV -----------------------------------------------------------------


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


# ---- HCRL text log ----------------------------------------------------------------

LOG_LINE = "Timestamp: 1479121434.850202        ID: 0350    000    DLC: 8    05 28 84 66 6d 00 00 a2\n"


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


# ---- detection ----------------------------------------------------------------------


def test_detection_looks_at_content_not_extension(tmp_path):
    ctt = write(tmp_path, "x.txt", CTT_HEADER + "1.0,0C1,00,0\n")
    hcrl = write(tmp_path, "x.log", "1478198376.389636,0350,2,05,20,T\n")
    log = write(tmp_path, "x.csv", "\n" + LOG_LINE)
    assert detect_format(ctt) == "can_train_and_test"
    assert detect_format(hcrl) == "hcrl_csv"
    assert detect_format(log) == "hcrl_log"
    assert read_frames(log)[1].format == "hcrl_log"


def test_detection_survives_one_odd_first_line(tmp_path):
    path = write(tmp_path, "a.csv", "garbage\n" + "1.0,0350,1,05,R\n" * 3)
    assert detect_format(path) == "hcrl_csv"
    frames, report = read_frames(path)
    assert len(frames) == 3 and report.bad_examples[0][0] == 1


def test_unknown_format_names_the_file_and_the_known_formats(tmp_path):
    path = write(tmp_path, "mystery.csv", "a;b;c\n1;2;3\n")
    with pytest.raises(KdgatError) as err:
        detect_format(path)
    message = str(err.value)
    assert "mystery.csv" in message
    assert all(fmt in message for fmt in FORMATS)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(KdgatError, match="empty.csv.*empty"):
        read_frames(write(tmp_path, "empty.csv", "\n\n"))
    with pytest.raises(KdgatError, match="nowhere.csv.*does not exist"):
        read_frames(tmp_path / "nowhere.csv")


def test_unknown_format_argument(tmp_path):
    path = write(tmp_path, "a.csv", CTT_HEADER + "1.0,0C1,00,0\n")
    with pytest.raises(KdgatError, match="'parquet'.*can_train_and_test"):
        read_frames(path, "parquet")


# ---- the launcher's look at a file's first lines -------------------------------------------


BAD_LOG_LINE = "Timestamp: x        ID: 0350    000    DLC: 0"


@pytest.mark.parametrize(
    "fmt,bad,good",
    [
        ("can_train_and_test", "1.0,XYZ,00,0", "2.0,0C1,00,1"),
        ("hcrl_csv", "1.0,0316,8,05,R", "1.0,0316,1,05,R"),
        ("hcrl_log", BAD_LOG_LINE, "Timestamp: 1.5  ID: 0350  000  DLC: 1  05"),
    ],
)
def test_head_problem_names_the_format_the_first_row_and_a_good_row(tmp_path, fmt, bad, good):
    header = CTT_HEADER if fmt == "can_train_and_test" else ""
    path = write(tmp_path, f"{fmt}.dat", header + f"{bad}\n" * 3)
    problem = head_problem(path)
    assert problem.startswith(f"{path}: no usable CAN frame in its first")
    assert f"({fmt}; first row {bad!r});" in problem
    assert problem.endswith(f"a {fmt} row is like {REGISTRY[fmt].EXAMPLE!r}")
    assert head_problem(write(tmp_path, f"good_{fmt}.dat", header + f"{bad}\n{good}\n")) is None


def test_head_problem_of_unknown_empty_and_missing_files(tmp_path):
    assert "unknown CAN file format" in head_problem(write(tmp_path, "m.csv", "a;b;c\n"))
    assert "empty" in head_problem(write(tmp_path, "e.csv", "\n"))
    assert "nowhere.csv: cannot be read" in head_problem(tmp_path / "nowhere.csv")


def test_head_problem_reads_the_first_lines_once(tmp_path, monkeypatch):
    import kdgat.data.formats as formats

    calls = []
    real = formats._first_lines
    monkeypatch.setattr(formats, "_first_lines", lambda path: calls.append(path) or real(path))
    assert head_problem(write(tmp_path, "a.csv", CTT_HEADER + "1.0,0C1,00,0\n")) is None
    assert len(calls) == 1


def test_sniffing_imports_no_numpy_pandas_or_arrow(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, "a.csv", CTT_HEADER + "1.0,0C1,00,0\n")
    code = (
        "import sys; from kdgat.data.formats import detect_format, head_problem; "
        f"assert detect_format({str(path)!r}) == 'can_train_and_test'; assert head_problem({str(path)!r}) is None; "
        "heavy = [m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules]; "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_new_format_is_one_module_in_the_registry(tmp_path, monkeypatch):
    """'t;id' lines: the module below and one REGISTRY entry make it detected, read, written and checked."""
    import types

    def read(path):
        rows = lines.Rows()
        t, ids = zip(*(line.split(";") for line in path.read_text().split()))
        rows.parts.append(lines.make_frames(len(t), timestamp=[float(v) for v in t], can_id=[int(v, 16) for v in ids]))
        return rows

    semicolon = types.ModuleType("semicolon")
    semicolon.NAME, semicolon.HELP, semicolon.EXAMPLE = "semicolon", "lines 't;id'", "1.5;0C1"
    semicolon.sniff = lambda head: sum(line.count(";") == 1 for line in head) / len(head)
    semicolon.head_rows = lambda head: (head, any(";" in line for line in head))
    semicolon.read = read
    semicolon.write = lambda f: "".join(f"{t:.6f};{c:X}\n" for t, c in zip(f.timestamp, f.can_id)).encode()
    monkeypatch.setitem(REGISTRY, "semicolon", semicolon)

    frames = sample_frames()
    frames.label[:] = 0
    write_frames(tmp_path / "a.txt", frames, "semicolon")
    assert (tmp_path / "a.txt").read_text().startswith("1672531200.001234;C1\n")
    assert detect_format(tmp_path / "a.txt") == "semicolon"
    back, report = read_frames(tmp_path / "a.txt")
    assert report.format == "semicolon" and back.can_id.tolist() == frames.can_id.tolist()
    assert head_problem(tmp_path / "a.txt") is None
    with pytest.raises(KdgatError, match="semicolon \\(lines 't;id'\\)"):
        detect_format(write(tmp_path, "b.txt", "nothing known\n"))


# ---- writing -------------------------------------------------------------------------


def sample_frames() -> Frames:
    return Frames(
        timestamp=np.array([1672531200.001234, 1672531200.5, 0.000001]),
        can_id=np.array([0x0C1, 0x1ABCDEF0, 0x7], np.int32),
        dlc=np.array([8, 2, 0], np.uint8),
        payload=payload_rows([0x00, 0xF0, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6], [0x05, 0x20], []),
        label=np.array([0, 1, 1], np.uint8),
    )


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
