"""Joining a list through the public form: double opt-in with a signed, expiring confirmation link.

`request` records the wish (subscriber, an "unconfirmed" subscription, a consent record with source,
time and IP); `confirm` turns the signed link into a confirmed subscription. Both run in one write
transaction and take `now`. The confirmation and welcome mails are the send stage's
(`newsletter.send.notices`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from newsletter.audience import status
from newsletter.audience.subscribers import clean_text, is_suppressed, normalize_email
from newsletter.ids import parse_id
from newsletter.store.tables import lists, subscribers, subscriptions
from newsletter.tokens import Signer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """What a form post asked for, after validation."""

    list_slug: str
    email: str
    name: str
    language: str
    ip: str  # already anonymised by the caller (ip_privacy)
    detail: str = "form"


@dataclass(frozen=True)
class Outcome:
    subscriber_id: int
    list_id: int
    mail: str  # "confirm", "welcome" or "" (nothing to send: already subscribed, or suppressed)


def public_list(conn: Connection, slug: str) -> Any | None:
    """The active public list `slug`, or None."""
    return conn.execute(
        select(lists).where(lists.c.slug == slug, lists.c.active.is_(True), lists.c.public.is_(True))
    ).first()


def request(conn: Connection, wish: Request, *, now: datetime) -> Outcome | None:
    """Record a subscription wish; None when the list is not public. Raises InputError on a bad address."""
    mlist = public_list(conn, wish.list_slug)
    if mlist is None:
        return None
    email = normalize_email(wish.email)
    language = wish.language if wish.language in mlist.languages else mlist.default_language
    row = conn.execute(select(subscribers.c.id).where(subscribers.c.email == email)).first()
    if row is None:
        inserted = conn.execute(
            subscribers.insert().values(
                email=email,
                name=clean_text(wish.name),
                language=language,
                timezone="UTC",
                country="",
                attributes={},
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None  # an INSERT of one row always has its key
        subscriber_id = int(inserted[0])
    else:
        subscriber_id = int(row.id)
    current = conn.scalar(
        select(subscriptions.c.status).where(
            subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id == mlist.id
        )
    )
    status.record(
        conn, subscriber_id, mlist.id, "subscribe", source="form", detail=wish.detail, ip=wish.ip, now=now
    )
    if current == "confirmed":
        return Outcome(subscriber_id, mlist.id, "")
    if current in ("bounced", "complained"):
        return Outcome(subscriber_id, mlist.id, "")  # never mailed again; the page says the same as ever
    if current is None:
        conn.execute(
            subscriptions.insert().values(
                subscriber_id=subscriber_id,
                list_id=mlist.id,
                status="unconfirmed",
                soft_bounces=0,
                created_at=now,
                updated_at=now,
            )
        )
    if not mlist.double_opt_in and not is_suppressed(conn, email) and current is None:
        _confirm(conn, subscriber_id, mlist.id, source="form", ip=wish.ip, now=now)
        return Outcome(subscriber_id, mlist.id, "welcome")
    # Unconfirmed, or unsubscribed earlier: only the person's own click on the link brings them back.
    return Outcome(subscriber_id, mlist.id, "confirm")


def _confirm(
    conn: Connection, subscriber_id: int, list_id: int, *, source: str, ip: str, now: datetime
) -> None:
    conn.execute(
        update(subscriptions)
        .where(
            subscriptions.c.subscriber_id == subscriber_id,
            subscriptions.c.list_id == list_id,
            subscriptions.c.status == "unconfirmed",
        )
        .values(status="confirmed", updated_at=now)
    )
    status.record(conn, subscriber_id, list_id, "confirm", source=source, ip=ip, now=now)


def read_confirmation(signer: Signer, token: str, max_age: float, now: float) -> tuple[int, int] | None:
    """(subscriber id, list id) of a valid, unexpired confirmation token."""
    fields = signer.read("confirm", token, max_age=max_age, now=now)
    ids = [parse_id(f) for f in fields or ()]
    if len(ids) != 2 or ids[0] is None or ids[1] is None:
        return None
    return ids[0], ids[1]


def confirm(conn: Connection, subscriber_id: int, list_id: int, *, ip: str, now: datetime) -> str | None:
    """Confirm a subscription; returns the subscription's status afterwards, None if it is gone.

    An unsubscribed person who confirms comes back (their own explicit act); a bounced or complained
    address stays as it is.
    """
    current = conn.scalar(
        select(subscriptions.c.status).where(
            subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list_id == list_id
        )
    )
    if current == "unconfirmed":
        _confirm(conn, subscriber_id, list_id, source="form", ip=ip, now=now)
        return "confirmed"
    if current == "unsubscribed":
        status.resubscribe(
            conn, subscriber_id, list_ids=[list_id], source="form", detail="confirmed link", ip=ip, now=now
        )
        return "confirmed"
    return current
