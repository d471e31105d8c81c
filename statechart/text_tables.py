"""Plain aligned text tables, for the CLI and the demo (which is a library module and must not import
the CLI, so the one table layout lives here, below both).

Pure: it returns lines and leaves writing them (and any styling) to the caller.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["format_table", "NONE_ROW"]

#: What a table with no rows shows instead of a lone header line.
NONE_ROW = "(none)"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = (),
                 indent: str = "  ") -> list[str]:
    """The header line and one line per row, columns padded to the widest cell and joined by two spaces.

    ``right`` holds the indexes of right-aligned (numeric) columns; trailing spaces are stripped.
    With no rows the table is the single line ``(none)`` (no header), which reads better than an
    empty table.
    """
    if not rows:
        return [indent + NONE_ROW]
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [indent + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in cells]
