"""A file cut into blocks of whole lines: every byte once, in order, whatever the terminators."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from kdgat.data.formats import blocks


def random_lines(rng, n: int, terminators: list[bytes]) -> list[bytes]:
    """Lines of 1..300 bytes (some longer than a block), each with a '\\n', '\\r\\n' or bare '\\r' (an empty line
    after a bare '\\r' would make it '\\r\\n')."""
    out = []
    for _ in range(n):
        body = bytes(rng.integers(ord("0"), ord("z"), int(rng.choice([1, 5, 30, 300]))).astype(np.uint8))
        out.append(body + terminators[int(rng.integers(len(terminators)))])
    return out


@pytest.mark.parametrize("terminators", [[b"\n", b"\r\n", b"\r"], [b"\r", b"\r\n"]])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block_bytes, peek_bytes", [(64, 16), (100, 64), (257, 1 << 16)])
def test_blocks_hold_every_line_once_whatever_the_cut(tmp_path, monkeypatch, seed, block_bytes, peek_bytes,
                                                     terminators):
    monkeypatch.setattr(blocks, "PEEK_BYTES", peek_bytes)
    rng = np.random.default_rng(seed)
    rows = random_lines(rng, 120, terminators)
    if seed % 2:
        rows[-1] = rows[-1].rstrip(b"\r\n")  # a last line without a terminator
    skip = seed % 3
    data = (blocks.BOM if seed % 2 else b"") + b"".join(rows)
    path = tmp_path / "f"
    path.write_bytes(data)

    digest = hashlib.sha256()
    got = list(blocks.read_blocks(path, skip_lines=skip, block_bytes=block_bytes, digest=digest))

    body = b"".join(rows[skip:])
    assert b"".join(b.data for b in got) == body
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert sum(b.lines for b in got) == len(rows) - skip
    assert got[0].first_line == skip + 1 and got[0].offset == len(data) - len(body)
    for before, after in zip(got, got[1:]):
        assert after.offset == before.offset + len(before.data)
        assert after.first_line == before.first_line + before.lines
        # a block ends at a line's end: never between the '\r' and '\n' of one terminator
        assert before.data[-1:] in (b"\n", b"\r") and not (before.data[-1:] == b"\r" and after.data[:1] == b"\n")
        assert before.lines == blocks.count_lines(before.data)


def test_a_block_never_ends_between_the_two_bytes_of_a_crlf(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "PEEK_BYTES", 16)
    data = b"a\r" * 31 + b"b\r\n" + b"c\r" * 40  # byte 63 is the '\r' of "b\r\n", byte 64 its '\n'
    path = tmp_path / "f"
    path.write_bytes(data)
    got = list(blocks.read_blocks(path, block_bytes=64))
    assert b"".join(b.data for b in got) == data
    assert got[0].data.endswith(b"a\r") and got[1].data.startswith(b"b\r\n")
    assert sum(b.lines for b in got) == 31 + 1 + 40


@pytest.mark.parametrize("terminators", [[b"\n"], [b"\n", b"\r\n"], [b"\n", b"\r\n", b"\r"]])
@pytest.mark.parametrize("last", [b"", b"tail"])
def test_a_whole_file_counts_its_newline_ended_lines(tmp_path, terminators, last):
    rows = random_lines(np.random.default_rng(7), 3000, terminators)
    data = b"".join(rows) + last
    path = tmp_path / "f"
    path.write_bytes(data)
    by_newline = len(data.split(b"\n")) - data.endswith(b"\n")
    assert blocks.count_newline_lines(path) == by_newline
    if b"\r" not in terminators:  # where only '\n' ends lines, it is the blocks' count
        assert by_newline == blocks.count_lines(data) == 3000 + len(last[:1])
    (tmp_path / "empty").write_bytes(b"")
    assert blocks.count_newline_lines(tmp_path / "empty") == 0
