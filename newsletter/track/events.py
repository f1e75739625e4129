"""Bulk insert of tracking events: a whole batch in one statement, values already in the driver's form.

The events table is the one hot write of the system (every open, click and webhook event), so rows are
built as tuples in the column order below and sent without SQLAlchemy's per-row parameter processing
(most of the cost of a batch): an `executemany` on SQLite, COPY on PostgreSQL.
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
# The PostgreSQL type of each column above, to cast the JSON the rows travel in.
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
    conflict = " ON CONFLICT (sg_event_id) DO NOTHING" if skip_duplicates else ""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT + conflict, rows)
    elif skip_duplicates:
        conn.exec_driver_sql(_PG_INSERT + conflict, (_pg_batch(rows),))
    else:
        _pg_copy(conn, rows)


def known_event_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The sg_event_ids among `ids` already stored, in one query (asked first, so replays are cheap)."""
    if not ids:
        return set()
    sqlite = conn.dialect.name == "sqlite"
    known = _KNOWN_SQLITE if sqlite else _KNOWN_PG
    return {row[0] for row in conn.exec_driver_sql(known, (json.dumps(ids) if sqlite else ids,))}


def insert_new_events(
    conn: Connection, rows: list[tuple[Any, ...]], *, seen: set[str] | None = None
) -> set[str]:
    """Insert the rows whose sg_event_id is not stored yet (rows without one always go in); returns
    the sg_event_ids inserted, so that only new events are acted on. `seen`: the ids already known
    to be stored, from `known_event_ids` on this transaction (else it is asked here)."""
    if not rows:
        return set()
    sqlite = conn.dialect.name == "sqlite"
    if seen is None:
        seen = known_event_ids(conn, [r[SG_EVENT_ID] for r in rows if r[SG_EVENT_ID] is not None])
    new = [r for r in rows if r[SG_EVENT_ID] is None or r[SG_EVENT_ID] not in seen]
    stored = {r[SG_EVENT_ID] for r in new if r[SG_EVENT_ID] is not None}
    if not new:
        return stored
    if sqlite:  # the write transaction holds the database lock: nothing can come in between
        insert_events(conn, new, skip_duplicates=True)
        return stored
    # PostgreSQL: COPY, the fastest way in. Another instance may store the same event in between:
    # then the COPY fails on the unique index, and the batch goes in again with ON CONFLICT,
    # RETURNING which rows this statement stored.
    try:
        with conn.begin_nested():
            _pg_copy(conn, new)
        return stored
    except conn.dialect.loaded_dbapi.IntegrityError:  # raised by the driver's COPY, unwrapped
        sql = f"{_PG_INSERT} ON CONFLICT (sg_event_id) DO NOTHING RETURNING sg_event_id"
        return {row[0] for row in conn.exec_driver_sql(sql, (_pg_batch(new),)) if row[0] is not None}


def _pg_copy(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """COPY FROM STDIN on the caller's transaction: the fastest way into PostgreSQL."""
    dbapi: Any = conn.connection.dbapi_connection  # a psycopg Connection
    with dbapi.cursor() as cursor, cursor.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


SG_EVENT_ID = COLUMNS.index("sg_event_id")
# The ids of a batch already stored, asked with one parameter (a JSON array, a PostgreSQL array).
_KNOWN_SQLITE = "SELECT sg_event_id FROM events WHERE sg_event_id IN (SELECT value FROM json_each(?))"
_KNOWN_PG = "SELECT sg_event_id FROM events WHERE sg_event_id IN (SELECT unnest(%s::varchar[]))"
_SQLITE_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join(['?'] * len(COLUMNS))})"
# PostgreSQL, where COPY cannot skip duplicates: the whole batch as one JSON array of rows, unpacked
# by the server. One parameter whatever the batch size, and one json.dumps in C instead of the driver
# adapting every value in Python (per-row executemany or unnest() of column arrays cost several
# times more).
_PG_INSERT = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT "
    + ", ".join(f"(e->>{i})::{kind}" for i, kind in enumerate(PG_TYPES))
    + " FROM jsonb_array_elements(%s::jsonb) AS e"
)


def _pg_batch(rows: list[tuple[Any, ...]]) -> str:
    return json.dumps(rows, ensure_ascii=False, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"events: cannot store {type(value).__name__} {value!r}")
