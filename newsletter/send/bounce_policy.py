"""What a bounce or a complaint does, wherever it was learnt: an SMTP reply at RCPT, a DSN or an ARF
report read from the bounce mailbox.

Each one is stored as the same kind of event the SendGrid webhook stores, so the dashboard and `stats`
count it alike:

    hard   5.x.x at RCPT or in a DSN     event `bounce` (type bounce)    suppressed at once
    soft   4.x.x failed DSN               event `bounce` (type blocked)   counts towards the limit
    soft   4xx at RCPT, delayed DSN       event `deferred` (type soft)    counts towards the limit
    complaint  ARF abuse report           event `spamreport`              suppressed at once

Soft bounces decay (as Mailman's bounce score does): an address is treated as bounced when
`soft_bounce_limit` of them fall within `soft_bounce_window_days`, at most one a day; each counted one is
recorded in the subscriber's consent history with the server's diagnostic text, which is what the
window counts (every one is stored as an event).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, func, select, update

from newsletter.audience import status
from newsletter.audience.subscribers import normalize_email
from newsletter.errors import InputError
from newsletter.store.tables import consents, events, occurrences, sends, subscribers, subscriptions

Kind = Literal["hard", "soft", "delayed", "complaint"]
SOFT_ACTION = "soft_bounce"
_ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_BASIC = re.compile(r"(?<!\d)([45]\d\d)(?!\d)")


@dataclass(frozen=True)
class Policy:
    soft_bounce_limit: int = 3
    soft_bounce_window_days: float = 30.0

    @classmethod
    def of(cls, settings: Any) -> Policy:
        return cls(int(settings["soft_bounce_limit"]), float(settings["soft_bounce_window_days"]))


@dataclass(frozen=True)
class Bounce:
    """One failed recipient (or one complaint), as learnt from a reply or a report."""

    kind: Kind
    email: str  # the address that failed or complained ("" when only the send is known)
    at: datetime
    send_id: int | None = None
    status: str = ""  # enhanced status code, e.g. 5.1.1
    detail: str = ""  # the server's diagnostic text
    source: str = "smtp"  # smtp (a reply while sending) or mailbox (a DSN or ARF report)
    key: str | None = None  # dedupe key: the same report processed twice is stored once


@dataclass
class Applied:
    stored: int = 0
    duplicates: int = 0
    suppressed: int = 0
    unmatched: int = 0
    errors: list[str] = field(default_factory=list)


def apply(conn: Connection, bounces: Iterable[Bounce], policy: Policy) -> Applied:
    """Store each bounce as an event and change the subscription, inside the caller's transaction."""
    result = Applied()
    for b in bounces:
        if b.key is not None and conn.scalar(select(events.c.id).where(events.c.sg_event_id == b.key)):
            result.duplicates += 1
            continue
        send = None
        if b.send_id is not None:
            send = conn.execute(
                select(
                    sends.c.id, sends.c.occurrence_id, sends.c.subscriber_id, sends.c.language, sends.c.email
                ).where(sends.c.id == b.send_id)
            ).first()
        email = _address(b.email) or (_address(send.email) if send is not None else None)
        subscriber_id = send.subscriber_id if send is not None else None
        if subscriber_id is None and email:
            subscriber_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
        if send is None and subscriber_id is None:
            result.unmatched += 1
            continue
        campaign = (
            conn.scalar(select(occurrences.c.campaign).where(occurrences.c.id == send.occurrence_id))
            if send is not None
            else None
        )
        kind, data_type = _event_kind(b.kind)
        data = {"type": data_type, "status": b.status, "reason": b.detail[:1000], "email": email or ""}
        conn.execute(
            events.insert().values(
                kind=kind,
                source=b.source[:16],
                occurrence_id=send.occurrence_id if send is not None else None,
                send_id=send.id if send is not None else None,
                subscriber_id=subscriber_id,
                campaign=campaign,
                language=send.language if send is not None else None,
                machine=False,
                user_agent="",
                ip="",
                sg_event_id=b.key,
                data=data,
                at=b.at,
            )
        )
        result.stored += 1
        if _act(conn, b, subscriber_id, email, policy):
            result.suppressed += 1
    return result


def _event_kind(kind: Kind) -> tuple[str, str]:
    return {
        "hard": ("bounce", "bounce"),
        "soft": ("bounce", "blocked"),
        "delayed": ("deferred", "soft"),
        "complaint": ("spamreport", "abuse"),
    }[kind]


def _act(conn: Connection, b: Bounce, subscriber_id: int | None, email: str | None, policy: Policy) -> bool:
    detail = f"{b.source} {b.kind} bounce {b.status}: {b.detail}".strip()[:500]
    if b.kind == "complaint":
        detail = f"{b.source} spam complaint: {b.detail}".strip()[:500]
        status.leave(conn, subscriber_id, "complained", source=b.source, email=email, detail=detail, now=b.at)
        return True
    if b.kind == "hard":
        status.leave(conn, subscriber_id, "bounced", source=b.source, email=email, detail=detail, now=b.at)
        return True
    if subscriber_id is None:
        return False
    return soft_bounce(conn, subscriber_id, policy, source=b.source, detail=detail, now=b.at)


def soft_bounce(
    conn: Connection, subscriber_id: int, policy: Policy, *, source: str, detail: str, now: datetime
) -> bool:
    """Record one soft bounce; True when `limit` of them within the window make the address bounced.

    At most one counts per day (as Mailman scores them): a server deferring every retry of one day
    is one bad day, not a dead address.
    """
    if _soft_bounces_since(conn, subscriber_id, now - timedelta(days=1), now):
        return False
    status.record(conn, subscriber_id, None, SOFT_ACTION, source=source, detail=detail, now=now)
    recent = _soft_bounces_since(
        conn, subscriber_id, now - timedelta(days=policy.soft_bounce_window_days), now
    )
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .values(soft_bounces=recent, updated_at=now)
    )
    if policy.soft_bounce_limit > 0 and recent >= policy.soft_bounce_limit:
        status.leave(
            conn,
            subscriber_id,
            "bounced",
            source=source,
            detail=f"{recent} soft bounces in {policy.soft_bounce_window_days:g} days; {detail}"[:500],
            now=now,
        )
        return True
    return False


def _soft_bounces_since(conn: Connection, subscriber_id: int, since: datetime, now: datetime) -> int:
    query = (
        select(func.count())
        .select_from(consents)
        .where(
            consents.c.subscriber_id == subscriber_id,
            consents.c.action == SOFT_ACTION,
            consents.c.at > since,
            consents.c.at <= now,
        )
    )
    return int(conn.scalar(query) or 0)


def _address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize_email(value)
    except InputError:
        return None


def bounce_status(text: str) -> str:
    """The enhanced status code (RFC 3463) in an SMTP reply or diagnostic, else one from its basic code."""
    found = _ENHANCED.search(text)
    if found:
        return found.group(1)
    basic = _BASIC.search(text)
    return f"{basic.group(1)[0]}.0.0" if basic else ""


def record_replies(store: Any, result: Any, recipient: Any, policy: Policy, now: datetime) -> Applied:
    """Bounces from the SMTP replies of one message: a 5xx at RCPT is hard, a 4xx at RCPT is soft."""
    found = [
        Bounce("hard", recipient.email, now, send_id, bounce_status(text) or "5.0.0", text, "smtp")
        for send_id, text in result.failed.items()
        if send_id in result.refused_recipients
    ]
    found += [
        Bounce("delayed", recipient.email, now, send_id, bounce_status(text) or "4.0.0", text, "smtp")
        for send_id, text in result.deferred.items()
    ]
    with store.write() as conn:
        return apply(conn, found, policy)
