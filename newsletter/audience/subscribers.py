"""Subscribers: addresses, the data-access right (show), erasure (forget), export, suppression."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, delete, exists, select, update

from newsletter import audit, csvsafe
from newsletter.errors import InputError
from newsletter.store import Store, now_utc, sendstatus
from newsletter.store.tables import (
    consents,
    events,
    lists,
    registrations,
    sends,
    subscribers,
    subscriptions,
    suppressions,
)

EXPORT_COLUMNS = ["email", "name", "language", "timezone", "country"]
PAGE = 2000


# RFC 5322 dot-atom made of ASCII atext: the local part of nearly every real address.
_ASCII_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


def normalize_email(raw: str) -> str:
    """The stored form of an address: validated by email-validator (no DNS), lowercased.

    email-validator spends most of its time on the domain, and a list has few distinct domains, so
    for the common shape (ASCII dot-atom local part) the domain's verdict is cached and the local
    part checked with the same rule email-validator applies to it; anything else goes through
    `validate_email` whole. InputError says what is wrong.
    """
    text = (raw or "").strip()
    if not text:
        raise InputError("empty email address")
    local, at, domain = text.rpartition("@")
    if at and len(local) <= 64 and len(text) <= 254 and _ASCII_LOCAL.match(local):
        normalized_domain = _domain(domain)
        if normalized_domain is not None:
            return f"{local}@{normalized_domain}".lower()
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {text!r}: {exc}") from None
    return info.normalized.lower()


@lru_cache(maxsize=65536)
def _domain(domain: str) -> str | None:
    """email-validator's normalised form of `domain`, or None to take the slow path for the message."""
    try:
        return validate_email("x@" + domain, check_deliverability=False).domain
    except EmailNotValidError:
        return None


def email_hash(email: str) -> str:
    """SHA-256 of the normalised address: what suppression keeps of a forgotten person."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


# Control characters in free text: invisible, and PostgreSQL refuses NUL in any text column.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(text: str, size: int = 200) -> str:
    """Free text from outside (a name, an attribute) as stored: control characters dropped, whitespace
    collapsed, at most `size` characters."""
    return " ".join(_CONTROL.sub(" ", text).split())[:size]


@lru_cache(maxsize=1024)
def check_timezone(name: str) -> str:
    """The IANA zone `name`, or InputError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" (a folder), a name too long
        raise InputError(f"unknown timezone {name!r}; use an IANA name such as Europe/Paris") from None
    return name


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    # CLDR also names groupings and placeholders (EU, UN, ZZ "Unknown Region"...): not countries.
    not_countries = {"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB"}
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(c for c in codes if len(c) == 2 and c.isalpha() and c not in not_countries)


def check_country(code: str) -> str:
    upper = code.strip().upper()
    if upper not in _countries():
        raise InputError(f"unknown country {code!r}; use a two-letter ISO 3166 code such as KE or UA")
    return upper


def is_suppressed(conn: Connection, email: str) -> bool:
    return bool(conn.scalar(select(exists().where(suppressions.c.email_hash == email_hash(email)))))


def suppress(conn: Connection, email: str, reason: str) -> None:
    """Add the address to the suppression list (idempotent)."""
    h = email_hash(email)
    if not conn.scalar(select(exists().where(suppressions.c.email_hash == h))):
        conn.execute(suppressions.insert().values(email_hash=h, reason=reason, created_at=now_utc()))


def _row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


def show(store: Store, email: str) -> dict[str, Any] | None:
    """Everything stored about one person (the data-access right), or None."""
    email = normalize_email(email)
    with store.read() as conn:
        person = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
        if person is None:
            return None
        sid = person.id
        subs = conn.execute(
            select(
                lists.c.slug.label("list"),
                subscriptions.c.status,
                subscriptions.c.created_at,
                subscriptions.c.updated_at,
                subscriptions.c.soft_bounces,
            )
            .join(lists, lists.c.id == subscriptions.c.list_id)
            .where(subscriptions.c.subscriber_id == sid)
            .order_by(lists.c.slug)
        ).all()
        consent_rows = conn.execute(
            select(
                consents.c.action,
                consents.c.source,
                consents.c.detail,
                consents.c.ip,
                consents.c.at,
                lists.c.slug.label("list"),
            )
            .outerjoin(lists, lists.c.id == consents.c.list_id)
            .where(consents.c.subscriber_id == sid)
            .order_by(consents.c.at, consents.c.id)
        ).all()
        send_rows = conn.execute(
            select(
                sends.c.occurrence_id,
                sends.c.language,
                sendstatus.status().label("status"),
                sendstatus.sent_at().label("sent_at"),
            )
            .where(sends.c.subscriber_id == sid)
            .order_by(sends.c.id)
        ).all()
        event_rows = conn.execute(
            select(
                events.c.kind,
                events.c.campaign,
                events.c.language,
                events.c.label,
                events.c.machine,
                events.c.at,
            )
            .where(events.c.subscriber_id == sid)
            .order_by(events.c.at)
        ).all()
        registration_rows = conn.execute(
            select(
                registrations.c.event_id,
                registrations.c.session,
                registrations.c.approval,
                registrations.c.registered_at,
                registrations.c.source,
            )
            .where(registrations.c.subscriber_id == sid)
            .order_by(registrations.c.id)
        ).all()
        return {
            "subscriber": _row(person),
            "subscriptions": [_row(r) for r in subs],
            "registrations": [_row(r) for r in registration_rows],
            "consents": [_row(r) for r in consent_rows],
            "sends": [_row(r) for r in send_rows],
            "events": [_row(r) for r in event_rows],
            "suppressed": is_suppressed(conn, email),
        }


def forget(store: Store, email: str, audit_as: tuple[str, str] | None = None) -> bool:
    """Erase a person; keep only a hashed suppression entry so they are never mailed again.

    The audit log keeps its entries about them without the address; `audit_as` (actor, via) records
    the erasure itself, in the same transaction.
    """
    email = normalize_email(email)
    with store.write() as conn:
        suppress(conn, email, "forgotten")
        if audit_as is not None:
            audit.record(conn, audit_as[0], "forget", email, {}, audit_as[1], subject=email)
        audit.scrub(conn, email)  # this entry too: it keeps only the address's hash
        sid = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
        # The ledger and the tracking events keep their counts, not the person.
        conn.execute(
            update(sends).where(sends.c.email == email).values(email=email_hash(email), subscriber_id=None)
        )
        if sid is None:
            return False
        conn.execute(
            update(events)
            .where(events.c.subscriber_id == sid)
            .values(subscriber_id=None, ip="", user_agent="")
        )
        conn.execute(delete(consents).where(consents.c.subscriber_id == sid))
        conn.execute(delete(subscriptions).where(subscriptions.c.subscriber_id == sid))
        conn.execute(delete(subscribers).where(subscribers.c.id == sid))
        return True


def iter_subscribers(store: Store, list_slug: str | None = None, page: int = PAGE) -> Iterator[Any]:
    """Subscribers in id order, streamed with keyset pagination (memory flat in the list's size)."""
    last = 0
    while True:
        query = select(subscribers).where(subscribers.c.id > last).order_by(subscribers.c.id).limit(page)
        if list_slug is not None:
            query = query.where(
                subscribers.c.id.in_(
                    select(subscriptions.c.subscriber_id)
                    .join(lists, lists.c.id == subscriptions.c.list_id)
                    .where(lists.c.slug == list_slug)
                )
            )
        with store.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def export_csv(store: Store, out: IO[str], list_slug: str | None = None) -> int:
    """Write subscribers as CSV (the import's columns, attributes as extra columns). Returns rows."""
    if list_slug is not None:
        with store.read() as conn:
            if conn.scalar(select(lists.c.id).where(lists.c.slug == list_slug)) is None:
                raise InputError(f"unknown list {list_slug!r}")
    # Attribute columns: one pass over the keys first, so the header is complete before any row.
    attr_keys: set[str] = set()
    for row in iter_subscribers(store, list_slug):
        attr_keys.update((row.attributes or {}).keys())
    extra = sorted(attr_keys - set(EXPORT_COLUMNS))
    writer = csvsafe.writer(out)
    writer.writerow(EXPORT_COLUMNS + extra)
    count = 0
    for row in iter_subscribers(store, list_slug):
        attrs = row.attributes or {}
        writer.writerow(
            [row.email, row.name, row.language, row.timezone, row.country]
            + [_cell(attrs.get(k)) for k in extra]
        )
        count += 1
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
