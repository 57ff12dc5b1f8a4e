"""HCRL CSV without a header: ``Timestamp,CAN ID,DLC,DATA0,...,Flag``.

A row is like ``1478198376.389636,0350,2,05,20,T``: as many data fields as
the DLC says, and the flag ``R`` (normal) or ``T`` (injected) last: the
Car-Hacking CSVs and the Survival attack files. The rows are parsed by
kdgat.data.formats.hcrl_rows (style ``FLAGGED``), a block at a time
(kdgat.data.formats.lines).
"""

from __future__ import annotations

from functools import partial

from kdgat.data.formats import hcrl_rows

NAME = "hcrl_csv"
HELP = "rows 'Timestamp,CAN ID,DLC,DATA0,...,Flag' ending in R or T"
EXAMPLE = "1478198376.389427,0316,8,05,21,68,09,21,21,00,6f,R"
STYLE = hcrl_rows.FLAGGED

sniff = partial(hcrl_rows.sniff, style=STYLE)
head_rows = partial(hcrl_rows.head_rows, style=STYLE)
stream = partial(hcrl_rows.stream, style=STYLE)
read = partial(hcrl_rows.read, style=STYLE)


def write(frames) -> bytes:
    """A row per frame, lower-case hex as in the real files."""
    return hcrl_rows.write(frames, STYLE)
