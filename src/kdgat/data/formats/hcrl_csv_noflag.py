"""HCRL CSV rows without a flag: ``Timestamp,CAN ID,DLC,DATA0,...``, attack-free.

A row is like ``1513918916.946519,0260,8,06,25,05,30,ff,cf,71,55``: the
HCRL Survival dataset's FreeDriving file of the Sonata. Every row is normal
traffic. Parsed by kdgat.data.formats.hcrl_rows (style ``NO_FLAG``).
"""

from __future__ import annotations

from functools import partial

from kdgat.data.formats import hcrl_rows

NAME = "hcrl_csv_noflag"
HELP = "rows 'Timestamp,CAN ID,DLC,DATA0,...' without a flag (attack-free)"
EXAMPLE = "1513918916.946519,0260,8,06,25,05,30,ff,cf,71,55"
STYLE = hcrl_rows.NO_FLAG

sniff = partial(hcrl_rows.sniff, style=STYLE)
head_rows = partial(hcrl_rows.head_rows, style=STYLE)
stream = partial(hcrl_rows.stream, style=STYLE)
read = partial(hcrl_rows.read, style=STYLE)


def write(frames) -> bytes:
    """A row per frame; ValueError for injected frames (these rows cannot say so)."""
    return hcrl_rows.write(frames, STYLE)
