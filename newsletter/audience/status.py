"""Subscription status changes: unsubscribe, resubscribe, bounces and complaints, each with a consent record.

Every function works inside the caller's write transaction (`conn`) and takes the time as `now`.
Unsubscribing from everything, a hard bounce and a spam complaint also put the address on the
suppression list at once, so no later import or send reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from newsletter.audience.subscribers import email_hash, suppress
from newsletter.store.tables import consents, subscribers, subscriptions, suppressions

# A worse status is never replaced by a milder one: an unsubscribe does not clear a bounce.
RANK = {"unconfirmed": 0, "confirmed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}
SUPPRESSION_REASON = {"unsubscribed": "unsubscribed", "bounced": "bounced", "complained": "complained"}


def record(
    conn: Connection,
    subscriber_id: int,
    list_id: int | None,
    action: str,
    *,
    source: str,
    now: datetime,
    detail: str = "",
    ip: str = "",
) -> None:
    """One consent record: who, which list, what, where from, when, from which (anonymised) IP."""
    conn.execute(
        consents.insert().values(
            subscriber_id=subscriber_id,
            list_id=list_id,
            action=action,
            source=source[:64],
            detail=detail[:500],
            ip=ip[:64],
            at=now,
        )
    )


def set_status(
    conn: Connection,
    subscriber_id: int,
    status: str,
    *,
    source: str,
    now: datetime,
    list_ids: Iterable[int] | None = None,
    detail: str = "",
    ip: str = "",
) -> list[int]:
    """Move the subscriber's subscriptions (all, or `list_ids`) to `status`; returns the lists changed."""
    query = select(subscriptions.c.list_id, subscriptions.c.status).where(
        subscriptions.c.subscriber_id == subscriber_id
    )
    if list_ids is not None:
        query = query.where(subscriptions.c.list_id.in_(list(list_ids)))
    changed = [
        row.list_id
        for row in conn.execute(query)
        if row.status != status and RANK[status] >= RANK.get(row.status, 0)
    ]
    if changed:
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id.in_(changed))
            .values(status=status, updated_at=now)
        )
    action = {"confirmed": "resubscribe"}.get(status, status)
    for list_id in changed:
        record(conn, subscriber_id, list_id, action, source=source, detail=detail, ip=ip, now=now)
    return changed


def _email(conn: Connection, subscriber_id: int) -> str | None:
    return conn.scalar(select(subscribers.c.email).where(subscribers.c.id == subscriber_id))


def leave(
    conn: Connection,
    subscriber_id: int | None,
    status: str,
    *,
    source: str,
    now: datetime,
    email: str | None = None,
    detail: str = "",
    ip: str = "",
) -> list[int]:
    """Leave every list as `status` (unsubscribed, bounced, complained) and suppress the address."""
    changed: list[int] = []
    if subscriber_id is not None:
        changed = set_status(conn, subscriber_id, status, source=source, detail=detail, ip=ip, now=now)
        if not changed:
            record(conn, subscriber_id, None, status, source=source, detail=detail, ip=ip, now=now)
        email = email or _email(conn, subscriber_id)
    if email:
        suppress(conn, email, SUPPRESSION_REASON[status])
    return changed


def soft_bounce(
    conn: Connection,
    subscriber_id: int,
    *,
    limit: int,
    source: str,
    now: datetime,
    detail: str = "",
) -> bool:
    """Count one soft bounce on every list; at `limit` the address counts as bounced. True if it did."""
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .values(soft_bounces=subscriptions.c.soft_bounces + 1, updated_at=now)
    )
    worst = conn.scalar(
        select(subscriptions.c.soft_bounces)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .order_by(subscriptions.c.soft_bounces.desc())
        .limit(1)
    )
    if worst is not None and limit > 0 and worst >= limit:
        leave(
            conn, subscriber_id, "bounced", source=source, detail=f"{worst} soft bounces; {detail}", now=now
        )
        return True
    return False


def resubscribe(
    conn: Connection,
    subscriber_id: int,
    *,
    source: str,
    now: datetime,
    list_ids: Iterable[int] | None = None,
    detail: str = "",
    ip: str = "",
) -> list[int]:
    """An explicit return (a confirmed form, SendGrid group_resubscribe): unsubscribed lists come back.

    Bounced and complained addresses stay where they are: only a person's own unsubscribe is undone.
    """
    query = select(subscriptions.c.list_id).where(
        subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.status == "unsubscribed"
    )
    if list_ids is not None:
        query = query.where(subscriptions.c.list_id.in_(list(list_ids)))
    back = [row.list_id for row in conn.execute(query)]
    if back:
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id.in_(back))
            .values(status="confirmed", soft_bounces=0, updated_at=now)
        )
        for list_id in back:
            record(conn, subscriber_id, list_id, "resubscribe", source=source, detail=detail, ip=ip, now=now)
    email = _email(conn, subscriber_id)
    if email and back:
        conn.execute(
            delete(suppressions).where(
                suppressions.c.email_hash == email_hash(email), suppressions.c.reason == "unsubscribed"
            )
        )
    return back


def subscription_statuses(conn: Connection, subscriber_id: int) -> dict[int, Any]:
    """list id -> status of one subscriber."""
    rows = conn.execute(
        select(subscriptions.c.list_id, subscriptions.c.status).where(
            subscriptions.c.subscriber_id == subscriber_id
        )
    )
    return {row.list_id: row.status for row in rows}
