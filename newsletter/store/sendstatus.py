"""A ledger row's status as its readers see it.

A batch handed over whole (one SendGrid request, every row answered by one message id) is settled
on its batch row alone: `send_batches.status` becomes `sent` and its rows keep `claimed`. Writing
each row again would cost the drain one index move per message, as much as the claim itself. So a
row is sent when it says so, or when it is `claimed` by a batch that says so; its time is the
batch's. Every reader of `sends.status` or `sends.sent_at` goes through here; the writers are in
`send.ledger`.

Nothing else is claimed by a batch that is over: a batch closed any other way moves its rows
(failed, in doubt, back to pending), and rows handed over one by one (SMTP) are marked each.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, and_, case, cast, exists, func, literal, or_, select

from newsletter.store.tables import send_batches, sends

SETTLED_WHOLE = "claimed"  # the row status a batch settled whole leaves on its rows


def _settled(row: Any = sends) -> Any:
    """EXISTS its batch, settled. `row`: `sends`, or any selectable with its status and batch_id."""
    b = send_batches.c
    return exists().where(b.id == row.c.batch_id, b.status == "sent")


def status(row: Any = sends) -> Any:
    """The row's status: its own, or `sent` for a row of a batch settled whole."""
    return case(
        (and_(row.c.status == SETTLED_WHOLE, _settled(row)), literal("sent")),
        else_=row.c.status,
    )


def is_sent(row: Any = sends) -> Any:
    """A condition: the row was handed over and accepted."""
    return or_(row.c.status == "sent", and_(row.c.status == SETTLED_WHOLE, _settled(row)))


def sent_at(row: Any = sends) -> Any:
    """When the row was handed over: its own time, or its batch's when settled whole."""
    b = send_batches.c
    batch_time = (
        select(b.updated_at)
        .where(b.id == row.c.batch_id, b.status == "sent", row.c.status == SETTLED_WHOLE)
        .scalar_subquery()
    )
    return func.coalesce(row.c.sent_at, batch_time)


def counts(*keys: Any, where: Any) -> Any:
    """SELECT keys..., status, count of the rows matching `where`, grouped by keys and status.

    The rows are counted per (keys, status, batch) first, from ix_sends_claim alone when the keys are
    among its columns; only then is each group's batch looked up, a few hundred lookups for an
    occurrence of 100,000 instead of one per row. (In outer queries: PostgreSQL only groups by an
    expression it can see is the same one.)
    """
    # Grouped in the index's column order, language too whatever the keys, so the groups need no sort.
    order = ["occurrence_id", "status", "language", "batch_id"]
    by = {c.key: c for c in (*keys, sends.c.status, sends.c.language, sends.c.batch_id)}
    group = sorted(by.values(), key=lambda c: order.index(c.key) if c.key in order else len(order))
    grouped = select(*group, func.count().label("n")).where(where).group_by(*group).subquery()
    named = select(*[grouped.c[k.key] for k in keys], status(grouped).label("status"), grouped.c.n).subquery()
    cols = [named.c[k.key] for k in keys]
    return select(*cols, named.c.status, cast(func.sum(named.c.n), Integer)).group_by(*cols, named.c.status)


# For raw SQL readers (track.sends): the same as `sent_at()`, of the ledger row aliased `s`.
SENT_AT_SQL = (
    "COALESCE(s.sent_at, (SELECT b.updated_at FROM send_batches b"
    f" WHERE b.id = s.batch_id AND b.status = 'sent' AND s.status = '{SETTLED_WHOLE}'))"
)
