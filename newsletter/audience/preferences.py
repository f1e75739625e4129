"""A subscriber's own choices from the preferences page: language, timezone and which lists they get."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from newsletter.audience import status as substatus
from newsletter.store import Store
from newsletter.store.tables import lists, subscribers, subscriptions


def lists_for(store: Store, subscriber_id: int, lang: str) -> list[dict[str, Any]]:
    """The person's lists and the public ones, with whether they currently receive each."""
    with store.read() as conn:
        statuses = substatus.subscription_statuses(conn, subscriber_id)
        rows = conn.execute(select(lists).where(lists.c.active.is_(True)).order_by(lists.c.slug)).all()
    return [
        {
            "id": row.id,
            "slug": row.slug,
            "name": (row.name or {}).get(lang) or (row.name or {}).get(row.default_language) or row.slug,
            "on": statuses.get(row.id) in ("confirmed", "unconfirmed"),
            "status": statuses.get(row.id),
        }
        for row in rows
        if row.id in statuses or row.public
    ]


def save(
    store: Store,
    subscriber_id: int,
    *,
    language: str,
    timezone: str,
    wanted: Collection[str],
    ip: str,
    now: datetime,
) -> None:
    """Apply the page's answer in one transaction: the lists named in `wanted` on, the others off.

    Lists left are unsubscribed; lists they had left come back; a public list they never joined is
    recorded like a form subscription, confirmed by the preferences link itself (it reached them).
    Lists the page did not offer are never touched.
    """
    items = lists_for(store, subscriber_id, language)
    with store.write() as conn:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id)
            .values(language=language, timezone=timezone, updated_at=now)
        )
        leaving = [i["id"] for i in items if i["on"] and i["slug"] not in wanted]
        if leaving:
            substatus.set_status(
                conn, subscriber_id, "unsubscribed", list_ids=leaving, source="preferences", ip=ip, now=now
            )
        back = [i["id"] for i in items if not i["on"] and i["slug"] in wanted and i["status"]]
        if back:
            substatus.resubscribe(conn, subscriber_id, list_ids=back, source="preferences", ip=ip, now=now)
        for item in items:
            if item["slug"] in wanted and item["status"] is None:
                conn.execute(
                    subscriptions.insert().values(
                        subscriber_id=subscriber_id,
                        list_id=item["id"],
                        status="confirmed",
                        soft_bounces=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                substatus.record(
                    conn, subscriber_id, item["id"], "subscribe", source="preferences", ip=ip, now=now
                )


def leave_all(store: Store, subscriber_id: int, *, source: str, ip: str, now: datetime) -> None:
    """Unsubscribe from every list."""
    with store.write() as conn:
        substatus.leave(conn, subscriber_id, "unsubscribed", source=source, ip=ip, now=now)
