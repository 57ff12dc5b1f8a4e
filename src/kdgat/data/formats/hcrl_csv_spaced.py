"""HCRL CSV rows with the data bytes space-separated in one field: ``Timestamp,CAN ID,DLC,DATA``.

A row is like ``1514703000.371009,00C1,8,47 7C 0C E4 5E 3D B0 28``: the
HCRL Survival dataset's FreeDriving files of the Soul and the Spark. No
flag: every row is normal traffic. Parsed by kdgat.data.formats.hcrl_rows
(style ``SPACED``).
"""

from __future__ import annotations

from functools import partial

from kdgat.data.formats import hcrl_rows

NAME = "hcrl_csv_spaced"
HELP = "rows 'Timestamp,CAN ID,DLC,DATA0 DATA1 ...' (bytes space-separated, no flag; attack-free)"
EXAMPLE = "1514703000.371009,00C1,8,47 7C 0C E4 5E 3D B0 28"
STYLE = hcrl_rows.SPACED

sniff = partial(hcrl_rows.sniff, style=STYLE)
head_rows = partial(hcrl_rows.head_rows, style=STYLE)
stream = partial(hcrl_rows.stream, style=STYLE)
read = partial(hcrl_rows.read, style=STYLE)


def write(frames) -> bytes:
    """A row per frame; ValueError for injected frames (these rows cannot say so)."""
    return hcrl_rows.write(frames, STYLE)
