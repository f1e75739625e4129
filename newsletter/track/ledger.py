"""Send-ledger rows for a batch of tracking events (hits and webhook posts), in one query.

A batch names up to thousands of send ids. An `IN (...)` list costs a bound parameter per id, which
SQLAlchemy expands and the driver parses on every call; here the ids travel as one value instead: a
PostgreSQL array literal, or a JSON array that SQLite unpacks with `json_each`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, Text, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

from newsletter.store.tables import occurrences, sends


class Send(NamedTuple):
    """What a tracking event needs of its ledger row (a plain tuple: read for every hit)."""

    id: int
    occurrence_id: int
    subscriber_id: int | None
    language: str
    email: str
    campaign: str
    sent_at: datetime | None = None


def ledger_rows(conn: Any, send_ids: Collection[int], *, sent_at: bool = False) -> dict[int, Send]:
    """send id -> its `Send`, for the ids that exist (`sent_at` only when asked: converting it
    costs more than the rest of the row)."""
    if not send_ids:
        return {}
    columns = [
        sends.c.id,
        sends.c.occurrence_id,
        sends.c.subscriber_id,
        sends.c.language,
        sends.c.email,
        occurrences.c.campaign,
    ]
    query = (
        select(*columns, *([sends.c.sent_at] if sent_at else []))
        .join(occurrences, occurrences.c.id == sends.c.occurrence_id)
        .where(_among(conn.dialect.name, [int(s) for s in send_ids]))
    )
    return {row[0]: Send(*row) for row in conn.execute(query)}


def _among(dialect: str, ids: list[int]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        # A text array literal, cast once in a subquery: cheaper than the driver adapting a list,
        # and `= ANY(CAST(...))` would cast it again for every row scanned.
        array = cast(literal("{" + ",".join(map(str, ids)) + "}", Text()), ARRAY(BigInteger))
        return sends.c.id.in_(select(func.unnest(array)))
    each = func.json_each(json.dumps(ids)).table_valued("value")
    return sends.c.id.in_(select(each.c.value))
