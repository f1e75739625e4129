"""Row ids and counts read from outside text (tokens, URLs, headers): ASCII digits, 64-bit at most.

`str.isdigit()` alone also takes "²" or "١", which `int()` refuses, and a 30-digit id overflows the
database driver; both ended as a 500.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1  # a signed 64-bit integer: BIGINT in PostgreSQL, INTEGER in SQLite


def parse_id(text: str) -> int | None:
    """The non-negative integer `text` spells in ASCII digits and that fits a 64-bit column, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None
