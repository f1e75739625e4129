"""CSV cells that a spreadsheet never runs as a formula (every CSV export goes through `writer`).

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice
and Google Sheets as a formula (`=HYPERLINK(...)`, `@SUM(...)`, DDE payloads): it gets a leading `'`,
which spreadsheets show as text (OWASP's advice). Numbers are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value`, with a leading `'` if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose text cells are escaped with `cell`."""

    def __init__(self, out: IO[str], **kwargs: Any):
        self._writer = csv.writer(out, lineterminator="\n", **kwargs)
        # With "\n" rows, csv quotes a cell holding "\n" but not one holding a lone "\r", which a
        # reader would split on: such rows are written fully quoted.
        self._quoted = csv.writer(out, lineterminator="\n", **{**kwargs, "quoting": csv.QUOTE_ALL})

    def writerow(self, row: Iterable[Any]) -> Any:
        cells = [cell(v) for v in row]
        if any(isinstance(v, str) and "\r" in v for v in cells):
            return self._quoted.writerow(cells)
        return self._writer.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: IO[str], **kwargs: Any) -> SafeWriter:
    """A CSV writer (newline-terminated rows) that escapes formula-like text cells."""
    return SafeWriter(out, **kwargs)
