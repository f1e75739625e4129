"""Fold new tracking events into the report rollups (`report_counts`, `report_seen`, `report_sends`).

Events are append-only, so the rollups follow them with a watermark: each refresh reads only the
events after `report_watermark.last_event_id`, in set-based INSERT ... SELECT statements, and moves
the watermark in the same transaction. The report's reads (figures.py, compare.py) refresh first
themselves, so each pays for the events since the last look, not for the million before it. The
ledger counts of an occurrence that finished sending no longer change: they are kept once in
`report_sends`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    extract,
    false,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from newsletter.store import Store, now_utc, sendstatus
from newsletter.store.tables import (
    events,
    occurrences,
    report_counts,
    report_seen,
    report_sends,
    report_watermark,
    sends,
)

SIGN_ON = "declaration-sign-on"
# One refresh folds at most this many events, so a page never waits for a long backlog; the
# CLI and the benchmark call `refresh` until it reports nothing left.
CHUNK = 200_000


@dataclass(frozen=True)
class Refresh:
    folded: int  # events read in this call
    watermark: int  # last event id folded in
    pending: bool  # more events remain after this chunk


def hour_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """Whole hours since the epoch of a UTC timestamp column, in SQL."""
    if dialect == "sqlite":
        # SQLite keeps the UTC time as text; strftime('%s') reads it as UTC.
        return cast(func.strftime("%s", column), Integer).op("/")(3600)
    return cast(func.floor(extract("epoch", column) / 3600), Integer)


def _insert(dialect: str) -> Any:
    return (sqlite if dialect == "sqlite" else postgresql).insert


def _scopes() -> list[tuple[ColumnElement[Any], ColumnElement[bool]]]:
    """(scope expression, condition) for the whole message, each link and each link label."""
    e = events.c
    return [
        (literal("", String), true()),
        (literal("l:", String) + cast(e.link_id, String), e.link_id.is_not(None)),
        (literal("b:", String) + e.label, and_(e.label.is_not(None), e.label != "")),
    ]


def _fold_raw(conn: Connection, dialect: str, lo: int, hi: int) -> None:
    e = events.c
    hour = hour_of(e.at, dialect)
    lang = func.coalesce(e.language, "")
    for scope, cond in _scopes():
        query = (
            select(
                e.occurrence_id,
                lang,
                scope,
                e.kind,
                hour,
                func.count(),
                func.sum(case((e.machine == true(), 0), else_=1)),
                literal(0),
                literal(0),
            )
            .where(e.id > lo, e.id <= hi, e.occurrence_id.is_not(None), cond)
            .group_by(e.occurrence_id, lang, scope, e.kind, hour)
        )
        _add_counts(conn, dialect, query, ("raw", "raw_human"))


def _fold_unique(conn: Connection, dialect: str, lo: int, hi: int) -> None:
    e = events.c
    hour = hour_of(e.at, dialect)
    # Uniqueness is per send ledger row; events without one (individual tracking off) each count.
    who = func.coalesce(e.send_id, -e.id)
    for human in (False, True):
        for scope, cond in _scopes():
            query = (
                select(
                    e.occurrence_id,
                    e.kind,
                    scope,
                    who,
                    literal(human, Boolean),
                    func.max(func.coalesce(e.language, "")),
                    func.min(hour),
                    literal(hi),
                )
                .where(e.id > lo, e.id <= hi, e.occurrence_id.is_not(None), cond)
                .group_by(e.occurrence_id, e.kind, scope, who)
            )
            if human:
                query = query.where(e.machine == false())
            stmt = _insert(dialect)(report_seen).from_select(
                ["occurrence_id", "kind", "scope", "who", "human", "language", "hour", "batch"], query
            )
            conn.execute(stmt.on_conflict_do_nothing())
    s = report_seen.c
    query = (
        select(
            s.occurrence_id,
            s.language,
            s.scope,
            s.kind,
            s.hour,
            literal(0),
            literal(0),
            func.sum(case((s.human == true(), 0), else_=1)),
            func.sum(case((s.human == true(), 1), else_=0)),
        )
        .where(s.batch == hi)
        .group_by(s.occurrence_id, s.language, s.scope, s.kind, s.hour)
    )
    _add_counts(conn, dialect, query, ("uniq", "uniq_human"))


def _add_counts(conn: Connection, dialect: str, query: Any, counted: tuple[str, ...]) -> None:
    """INSERT `query`'s rows into report_counts; on an existing row, add to its `counted` columns."""
    stmt = _insert(dialect)(report_counts).from_select(
        ["occurrence_id", "language", "scope", "kind", "hour", "raw", "raw_human", "uniq", "uniq_human"],
        query,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["occurrence_id", "language", "scope", "kind", "hour"],
            set_={name: report_counts.c[name] + stmt.excluded[name] for name in counted},
        )
    )


def _committed_max_id(store: Store) -> int:
    """The highest event id below which every event is committed (PostgreSQL).

    PostgreSQL hands out ids before commit, so a later-committing writer can leave a smaller id
    behind the watermark. A SHARE lock waits for every open insert on `events` to commit; ids taken
    after it are higher than the max we read.
    """
    with store.write() as conn:
        conn.exec_driver_sql("LOCK TABLE events IN SHARE MODE")
        return int(conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)


def watermark(conn: Connection) -> int:
    return int(conn.scalar(select(report_watermark.c.last_event_id).where(report_watermark.c.id == 1)) or 0)


def _unkept(conn: Connection) -> list[int]:
    """Occurrences that finished sending whose ledger counts are not kept yet."""
    kept = exists().where(report_sends.c.occurrence_id == occurrences.c.id)
    return list(conn.scalars(select(occurrences.c.id).where(occurrences.c.status == "sent", ~kept)))


def keep_finished_sends(store: Store) -> int:
    """Copy the ledger counts of occurrences that finished sending into `report_sends`, once."""
    with store.read() as conn:
        if not _unkept(conn):  # the common case: one indexed read, no write
            return 0
    with store.write() as conn:
        ids = _unkept(conn)
        counts = sendstatus.counts(
            sends.c.occurrence_id, sends.c.language, where=sends.c.occurrence_id.in_(ids)
        )
        columns = ["occurrence_id", "language", "status", "n"]
        # DO NOTHING: another instance may keep the same occurrence at the same moment.
        conn.execute(
            _insert(store.dialect)(report_sends).from_select(columns, counts).on_conflict_do_nothing()
        )
    return len(ids)


def refresh(store: Store, chunk: int = CHUNK) -> Refresh:
    """Fold the events after the watermark into the rollups, at most `chunk` events at a time."""
    keep_finished_sends(store)
    with store.read() as conn:
        seen = watermark(conn)
        newest = int(conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)
    if newest <= seen:  # the common case costs two indexed reads and no write
        return Refresh(0, seen, False)
    top = None if store.is_sqlite else _committed_max_id(store)
    with store.write() as conn:
        if top is None:  # SQLite: this transaction holds the only write lock, so all it sees is committed
            top = int(conn.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)
        # The first refresh ever creates the row; two instances doing so at once must not collide.
        conn.execute(
            _insert(store.dialect)(report_watermark)
            .values(id=1, last_event_id=0, refreshed_at=now_utc())
            .on_conflict_do_nothing()
        )
        # FOR UPDATE: a second instance waits here, then starts from where this one stopped.
        mark = report_watermark.c
        lo = int(conn.scalar(select(mark.last_event_id).where(mark.id == 1).with_for_update()) or 0)
        # The chunk ends at an id, not a count: ids are dense enough, and a range scan needs no sort.
        hi = min(top, lo + chunk)
        if hi <= lo:
            return Refresh(0, lo, False)
        folded = int(conn.scalar(select(func.count()).where(events.c.id > lo, events.c.id <= hi)) or 0)
        _fold_raw(conn, store.dialect, lo, hi)
        _fold_unique(conn, store.dialect, lo, hi)
        conn.execute(
            report_watermark.update()
            .where(report_watermark.c.id == 1)
            .values(last_event_id=hi, refreshed_at=now_utc())
        )
    return Refresh(folded, hi, hi < top)


def refresh_all(store: Store, chunk: int = CHUNK) -> int:
    """Refresh until no event is left behind the watermark. Returns the events folded in."""
    total = 0
    while True:
        step = refresh(store, chunk)
        total += step.folded
        if not step.pending:
            return total
