"""A block of CSV lines as columns, through pandas' C parser: the readers' fast path.

On few cores pandas' parser beats Arrow's, and it takes rows shorter than
the column list (the missing fields come back empty), which HCRL's rows,
as long as their DLC, need. Text columns stay Arrow strings (``ArrowDtype``):
no Python object per value, and no guessing that would read the payload
``0102`` as the number 102. Any doubt (a parser error, a row wider than the
columns) is None, and the caller parses the block exactly instead.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa

TEXT = pd.ArrowDtype(pa.large_string())


def read_table(source: bytes | Path, names: list, dtype=None, sep: str = ",", skip_lines: int = 0
               ) -> pd.DataFrame | None:
    r"""One row per line of ``source`` (blank lines included), text columns unless ``dtype`` says otherwise;
    ``sep=r"\s+"`` splits at runs of white space (leading white space ignored).

    ``source`` is a block's bytes, or a file's path: pandas 3.1 parses a local file of 5 MB or more
    on all the process's cores, straight from the page cache.
    """
    try:
        df = pd.read_csv(io.BytesIO(source) if isinstance(source, bytes) else source, header=None, names=names,
                         dtype=TEXT if dtype is None else dtype, sep=sep, na_filter=False, quoting=csv.QUOTE_NONE,
                         engine="c", skip_blank_lines=False, skiprows=skip_lines or None)
    except (ValueError, OverflowError):  # bad number, too many fields (ParserError), bad UTF-8
        return None
    if not isinstance(df.index, pd.RangeIndex) or list(df.columns) != list(names):
        return None  # pandas took a first column as the index: rows are wider than the names
    return df


def arrow_chunks(series: pd.Series) -> list[pa.Array]:
    """A text column as the Arrow arrays pandas made it of (one per piece it parsed), not joined."""
    arrow = pa.array(series.array)
    return arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]


def arrow_column(series: pd.Series) -> pa.Array:
    """A text column as one contiguous Arrow array (zero-copy when it is one chunk)."""
    arrow = pa.array(series.array)
    return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow


def text_columns(data: bytes, count: int, sep: str = ",") -> list[pa.Array] | None:
    """The block's ``count`` columns as Arrow strings (empty where a row is shorter)."""
    df = read_table(data, list(range(count)), sep=sep)
    return None if df is None else [arrow_column(df[c]) for c in df.columns]
