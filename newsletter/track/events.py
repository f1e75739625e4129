"""Bulk insert of tracking events: a whole batch in one statement, values already in the driver's form.

The events table is the one hot write of the system (every open, click and webhook event), so rows are
built as tuples in the column order below and sent without SQLAlchemy's per-row parameter processing
(most of the cost of a batch): an `executemany` on SQLite, COPY on PostgreSQL.
The table's definition stays in `store/tables.py`; a test checks these columns against it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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
# Opens and clicks of our own links have no SendGrid event id and no data: their rows leave both out,
# so that SQLite binds no NULLs (pysqlite looks up an adapter, raising and catching two
# AttributeErrors, for every parameter that is not exactly an int, float or str: None, and bool).
HIT_COLUMNS = tuple(c for c in COLUMNS if c not in ("sg_event_id", "data"))
# The PostgreSQL type of each column above: for the binary COPY, and to cast the JSON rows of the
# ON CONFLICT fallback.
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS: dict[int, str] = {}  # whole epoch seconds -> "YYYY-MM-DD HH:MM:SS", for SQLite


def epoch_times(epochs: Sequence[float], dialect: str) -> tuple[list[datetime], list[Any]]:
    """Each epoch (seconds) as an aware UTC datetime and as the driver takes it (see db_time), both
    from the same whole microsecond. For a batch of hits: SQLite's text is built from a per-second
    prefix, since datetime.isoformat costs more than the rest of storing a hit's time."""
    times: list[datetime] = []
    stored: list[Any] = []
    for epoch in epochs:
        micros = round(epoch * 1_000_000)
        at = _EPOCH + timedelta(microseconds=micros)
        times.append(at)
        if dialect != "sqlite":
            stored.append(at)
            continue
        second, fraction = divmod(micros, 1_000_000)
        prefix = _SECONDS.get(second)
        if prefix is None:
            if len(_SECONDS) > 100_000:
                _SECONDS.clear()
            prefix = _SECONDS[second] = at.strftime("%Y-%m-%d %H:%M:%S")
        stored.append(f"{prefix}.{fraction:06d}")
    return times, stored


def db_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def insert_events(conn: Connection, rows: list[tuple[Any, ...]], *, skip_duplicates: bool = False) -> None:
    """Insert `rows` (tuples in COLUMNS order, values from db_time/db_json); duplicates of sg_event_id
    are skipped when asked (the webhook's dedupe, race-safe across instances)."""
    if not rows:
        return
    conflict = _SKIP_STORED if skip_duplicates else ""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT + conflict, rows)
    elif skip_duplicates:
        conn.exec_driver_sql(_PG_INSERT + conflict, (_pg_batch(rows),))
    else:
        _pg_copy(conn, rows)


def insert_hits(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert opens, clicks and conversions of our own links: `rows` in HIT_COLUMNS order."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_HITS, rows)
    else:
        _pg_copy(conn, rows, HIT_COLUMNS)


def known_event_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The sg_event_ids among `ids` already stored, in one query (asked first, so replays are cheap)."""
    if not ids:
        return set()
    known = _KNOWN_SQLITE if conn.dialect.name == "sqlite" else _KNOWN_PG
    return {row[0] for row in conn.exec_driver_sql(known, (json.dumps(ids),))}


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
        sql = f"{_PG_INSERT}{_SKIP_STORED} RETURNING sg_event_id"
        return {row[0] for row in conn.exec_driver_sql(sql, (_pg_batch(new),)) if row[0] is not None}


def _pg_copy(conn: Connection, rows: list[tuple[Any, ...]], columns: tuple[str, ...] = COLUMNS) -> None:
    """COPY FROM STDIN on the caller's transaction: the fastest way into PostgreSQL. In the binary
    format, with the column types given, psycopg packs each value in C (about three times less of
    the web process's time than formatting text)."""
    dbapi: Any = conn.connection.dbapi_connection  # a psycopg Connection
    # `data` arrives already encoded (db_json): json's binary form is its text, so it goes as text.
    types = ["text" if c == "data" else PG_TYPES[COLUMNS.index(c)] for c in columns]
    sql = f"COPY events ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with dbapi.cursor() as cursor, cursor.copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


SG_EVENT_ID = COLUMNS.index("sg_event_id")
# The conflict target names the predicate of the partial unique index (uq_events_sg_event_id).
_SKIP_STORED = " ON CONFLICT (sg_event_id) WHERE sg_event_id IS NOT NULL DO NOTHING"
# The ids of a batch already stored, asked with one parameter: a JSON array (json.dumps runs in C; the
# driver adapting a list of strings would run in Python). On PostgreSQL, OFFSET 0 keeps the lateral
# subquery from being flattened into a join, so each id is one probe of the unique index whatever the
# statistics say (on stale ones, as after a burst of events, the planner picks a hash join that reads
# the whole table).
_KNOWN_SQLITE = "SELECT sg_event_id FROM events WHERE sg_event_id IN (SELECT value FROM json_each(?))"
_KNOWN_PG = (
    "SELECT e.sg_event_id FROM jsonb_array_elements_text(%s::jsonb) AS u(id) CROSS JOIN LATERAL"
    " (SELECT sg_event_id FROM events WHERE sg_event_id = u.id OFFSET 0) AS e"
)


def _sqlite_insert(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_SQLITE_INSERT = _sqlite_insert(COLUMNS)
_SQLITE_HITS = _sqlite_insert(HIT_COLUMNS)
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
