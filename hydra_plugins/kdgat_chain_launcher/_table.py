"""Tables of text for the terminal: the launcher's per-chain table and the app's status and report tables."""

from typing import Any, Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell, two spaces apart; the columns in `right` aligned right."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    return "\n".join(line.rstrip() for line in lines)
