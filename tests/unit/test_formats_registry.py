"""Which format a CAN file is in: detection from its content, the errors for unknown, empty and missing files,
the launcher's look at a file's first lines (head_problem), and a new format as one module in the registry."""

from __future__ import annotations

import pytest

from kdgat.data.formats import FORMATS, REGISTRY, detect_format, head_problem, lines, read_frames, write_frames
from kdgat.errors import KdgatError

from format_files import CTT_HEADER, LOG_LINE, sample_frames, write


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
