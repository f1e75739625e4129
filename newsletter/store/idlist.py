"""A list of ids or keys as ONE bound parameter, for `WHERE x IN (...)` on hot paths.

SQLAlchemy's expanding `IN` binds one parameter per value and re-renders the statement each time,
about 1 ms of Python for 1,000 ids, and the statement never reaches the compiled cache in one piece.
Here the list travels as one text value the database unpacks itself: `json_each` on SQLite, an
array cast on PostgreSQL. Values are bound, never spliced into the SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    any_,
    bindparam,
    cast,
    column,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY


def in_ids(conn: Connection, target: Any, values: Iterable[int], *, name: str = "ids") -> ColumnElement[bool]:
    """`target IN values` for integer ids, bound as one parameter."""
    ids = [int(v) for v in values]
    if conn.dialect.name == "postgresql":
        return target == any_(cast(bindparam(name, "{" + ",".join(map(str, ids)) + "}"), ARRAY(BigInteger)))
    return target.in_(select(column("value")).select_from(func.json_each(bindparam(name, json.dumps(ids)))))


def in_keys(
    conn: Connection, target: Any, values: Iterable[str], *, name: str = "keys"
) -> ColumnElement[bool]:
    """`target IN values` for short text keys (hex hashes, slugs), bound as one parameter."""
    keys = list(values)
    if conn.dialect.name == "postgresql":
        # An array literal: each element double-quoted, with `"` and `\` escaped (PostgreSQL's rule).
        quoted = ",".join('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)
        return target == any_(cast(bindparam(name, "{" + quoted + "}"), ARRAY(String)))
    return target.in_(select(column("value")).select_from(func.json_each(bindparam(name, json.dumps(keys)))))
