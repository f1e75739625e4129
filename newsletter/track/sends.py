"""Send-ledger rows for a batch of tracking events (hits and webhook posts), in one query.

A batch names up to thousands of send ids. They travel as one bound text value (a PostgreSQL array
literal, or a JSON array that SQLite unpacks with `json_each`), and the statement goes straight to
the driver: for a thousand rows, SQLAlchemy's per-row result processing costs more than the query.
`tests/test_track_store.py` runs it on both backends.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, NamedTuple

from newsletter.store.sendstatus import SENT_AT_SQL


class Send(NamedTuple):
    """What a tracking event needs of its ledger row (a plain tuple: read for every hit)."""

    id: int
    occurrence_id: int
    subscriber_id: int | None
    language: str
    email: str
    campaign: str
    sent_at: datetime | None = None


_COLUMNS = "s.id, s.occurrence_id, s.subscriber_id, s.language, s.email, o.campaign"
# One probe of the sends primary key per id on PostgreSQL, whatever the statistics say (OFFSET 0 keeps
# the lateral subquery from being flattened into a hash join that reads the whole table).
_FROM = {
    "postgresql": "FROM unnest(%s::bigint[]) AS u(id) CROSS JOIN LATERAL"
    " (SELECT * FROM sends WHERE sends.id = u.id OFFSET 0) AS s JOIN occurrences o ON o.id = s.occurrence_id",
    "sqlite": "FROM sends s JOIN occurrences o ON o.id = s.occurrence_id"
    " WHERE s.id IN (SELECT value FROM json_each(?))",
}


def ledger_rows(conn: Any, send_ids: Collection[int], *, sent_at: bool = False) -> dict[int, Send]:
    """send id -> its `Send`, for the ids that exist (`sent_at` only when asked: converting it
    costs more than the rest of the row)."""
    if not send_ids:
        return {}
    dialect = conn.dialect.name
    ids = [int(s) for s in send_ids]
    sql = f"SELECT {_COLUMNS}{', ' + SENT_AT_SQL if sent_at else ''} {_FROM[dialect]}"
    # As text: "{1,2}" is an array literal to PostgreSQL, "[1,2]" a JSON array to SQLite.
    among = ("[{}]" if dialect == "sqlite" else "{{{}}}").format(",".join(map(str, ids)))
    rows = conn.exec_driver_sql(sql, (among,)).fetchall()
    if not sent_at:
        return {row[0]: Send(*row) for row in rows}
    return {row[0]: Send._make((*row[:6], _aware(row[6]))) for row in rows}


def _aware(value: Any) -> datetime | None:
    """sent_at as an aware UTC datetime (SQLite returns SQLAlchemy's naive UTC text form)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
