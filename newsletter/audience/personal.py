"""A person's own data as one JSON document (the right of access and to data portability).

Offered to the person on their preferences page and to staff on the person's dashboard page: the
profile, every subscription, consent record, send and tracking event stored about them, as stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from newsletter.audience.subscribers import is_suppressed
from newsletter.store import Store
from newsletter.store.tables import consents, events, links, lists, sends, subscribers, subscriptions

FORMAT = "newsletter personal data export, version 1"


def _plain(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


def personal_data(store: Store, subscriber_id: int, now: datetime) -> dict[str, Any] | None:
    """Everything stored about subscriber `subscriber_id`, or None when there is no such person."""
    with store.read() as conn:
        person = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        if person is None:
            return None
        return {
            "format": FORMAT,
            "exported_at": now.isoformat(),
            "profile": _plain(person),
            "suppressed": is_suppressed(conn, person.email),
            **_rows(conn, subscriber_id),
        }


def _rows(conn: Connection, sid: int) -> dict[str, list[dict[str, Any]]]:
    subs = conn.execute(
        select(subscriptions, lists.c.slug.label("list"))
        .join(lists, lists.c.id == subscriptions.c.list_id)
        .where(subscriptions.c.subscriber_id == sid)
        .order_by(lists.c.slug)
    ).all()
    consent_rows = conn.execute(
        select(consents, lists.c.slug.label("list"))
        .outerjoin(lists, lists.c.id == consents.c.list_id)
        .where(consents.c.subscriber_id == sid)
        .order_by(consents.c.id)
    ).all()
    send_rows = conn.execute(select(sends).where(sends.c.subscriber_id == sid).order_by(sends.c.id)).all()
    send_ids = [r.id for r in send_rows]
    # An event is theirs when it names them, or a message sent to them (webhook events name the send).
    theirs = events.c.subscriber_id == sid
    if send_ids:
        theirs = or_(theirs, events.c.send_id.in_(send_ids))
    event_rows = conn.execute(
        select(events, links.c.url.label("link_url"))
        .outerjoin(links, links.c.id == events.c.link_id)
        .where(theirs)
        .order_by(events.c.id)
    ).all()
    return {
        "subscriptions": [_plain(r) for r in subs],
        "consents": [_plain(r) for r in consent_rows],
        "sends": [_plain(r) for r in send_rows],
        "events": [_plain(r) for r in event_rows],
    }
