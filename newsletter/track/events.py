"""Bulk insert of tracking events: one executemany of plain tuples on the driver.

The events table is the one hot write of the system (every open, click and webhook event), so rows are
built as tuples in the column order below with values already in the driver's form, and sent in one
`executemany`, skipping SQLAlchemy's per-row parameter processing (most of the cost of a batch).
The table's definition stays in `store/tables.py`; a test checks these columns against it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

COLUMNS = (
    "kind",
    "source",
    "occurrence_id",
    "send_id",
    "subscriber_id",
    "link_id",
    "campaign",
    "language",
    "label",
    "machine",
    "user_agent",
    "ip",
    "sg_event_id",
    "data",
    "at",
)
# The PostgreSQL array type of each column above, for unnest().
PG_TYPES = (
    "varchar",
    "varchar",
    "bigint",
    "bigint",
    "bigint",
    "bigint",
    "varchar",
    "varchar",
    "varchar",
    "boolean",
    "text",
    "varchar",
    "varchar",
    "json",
    "timestamptz",
)


def db_time(at: datetime, dialect: str) -> Any:
    """`at` as the driver takes it: SQLAlchemy's SQLite text form (naive UTC), else the aware datetime."""
    if dialect == "sqlite":
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        return at.isoformat(" ", "microseconds")[:26]  # "YYYY-MM-DD HH:MM:SS.ffffff", as SQLAlchemy writes
    return at


def db_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def insert_events(conn: Connection, rows: list[tuple[Any, ...]], *, skip_duplicates: bool = False) -> None:
    """Insert `rows` (tuples in COLUMNS order, values from db_time/db_json); duplicates of sg_event_id
    are skipped when asked (the webhook's dedupe, race-safe across instances)."""
    if not rows:
        return
    columns = ", ".join(COLUMNS)
    conflict = " ON CONFLICT (sg_event_id) DO NOTHING" if skip_duplicates else ""
    if conn.dialect.name == "sqlite":
        marks = ", ".join(["?"] * len(COLUMNS))
        conn.exec_driver_sql(f"INSERT INTO events ({columns}) VALUES ({marks}){conflict}", rows)
        return
    # PostgreSQL: one INSERT of unnested column arrays (15 parameters whatever the batch size); an
    # executemany would still be one statement per row on the server, several times slower.
    arrays = ", ".join(f"%s::{kind}[]" for kind in PG_TYPES)
    sql = f"INSERT INTO events ({columns}) SELECT * FROM unnest({arrays}){conflict}"
    conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*rows, strict=True)))
