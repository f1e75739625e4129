"""The audit log: every staff action, with who, when, what and from which command or page.

Callers (the CLI, the dashboard, the campaign composer) call `record` once the action is done:

    audit.record(site.store, "ana@hub.example.org", "pause", "webinar-april-1d/webinar-april/ru",
                 {"occurrence": 42}, via="web: POST /admin/occurrences/42/pause")

An entry about a person names them with `subject=<email>`: `forget` then strips the address from the
entry (target and details) and keeps the entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from newsletter.store import Store, now_utc
from newsletter.store.tables import audit_log

# What the code records today; `record` takes any short name, so new features add their own.
ACTIONS = (
    "send",
    "test-send",
    "pause",
    "resume",
    "cancel",
    "resume-send",
    "in-doubt",
    "compose",
    "edit",
    "import",
    "unsubscribe",
    "forget",
    "user-add",
    "data-export",
)
FORGOTTEN = "(forgotten person)"
COLUMNS = ("id", "at", "actor", "action", "target", "via", "details")


def _hash(email: str) -> str:
    # The same digest as audience.subscribers.email_hash (kept here: the audit log sits below audience).
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def record(
    conn_or_store: Connection | Store,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    via: str = "",
    *,
    subject: str | None = None,
    now: datetime | None = None,
) -> int:
    """Store one entry and return its id.

    `actor`: the dashboard user's email or `cli:<os user>`; `action`: a short name (see ACTIONS);
    `target`: what it acted on (campaign, occurrence key, list, address); `details`: JSON-able facts;
    `via`: the command line or the page (`cli: newsletter send x`, `web: POST /admin/...`);
    `subject`: the email of the person the entry concerns, if any (so `forget` can erase it).
    On a Connection the entry joins that transaction; on a Store it is written on its own.
    """
    values = {
        "at": now or now_utc(),
        "actor": actor[:320],
        "action": action[:64],
        "target": target[:500],
        "details": details or {},
        "via": via[:500],
        "subject_hash": _hash(subject) if subject else None,
    }
    if isinstance(conn_or_store, Store):
        with conn_or_store.write() as conn:
            return _insert(conn, values)
    return _insert(conn_or_store, values)


def _insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(audit_log.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]


def scrub(conn: Connection, email: str) -> int:
    """Strip `email` from every entry about that person (forget): the entries stay, the address goes."""
    h = _hash(email)
    address = email.strip().lower()
    rows = conn.execute(
        select(audit_log.c.id, audit_log.c.target, audit_log.c.via, audit_log.c.details).where(
            (audit_log.c.subject_hash == h) | (audit_log.c.target == address)
        )
    ).all()
    for row in rows:
        conn.execute(
            update(audit_log)
            .where(audit_log.c.id == row.id)
            .values(
                target=_without(row.target, address),
                via=_without(row.via, address),
                details=_without(row.details or {}, address),
            )
        )
    return len(rows)


def _without(value: Any, address: str) -> Any:
    if isinstance(value, str):
        return re.sub(re.escape(address), FORGOTTEN, value, flags=re.IGNORECASE)
    if isinstance(value, dict):
        return {k: _without(v, address) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, address) for v in value]
    return value


@dataclass(frozen=True)
class Filter:
    """Which entries to show: each field narrows (empty: no narrowing)."""

    actor: str = ""
    action: str = ""
    target: str = ""  # substring
    since: datetime | None = None
    until: datetime | None = None


def entries(store: Store, where: Filter = Filter(), limit: int | None = 500) -> list[dict[str, Any]]:
    """Entries matching `where`, newest first."""
    return list(iter_entries(store, where, limit=limit))


def iter_entries(
    store: Store, where: Filter = Filter(), limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Entries newest first, read in keyset pages (flat memory for a CSV of the whole log)."""
    page, last, given = 1000, None, 0
    while True:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(page)
        if where.actor:
            query = query.where(audit_log.c.actor == where.actor)
        if where.action:
            query = query.where(audit_log.c.action == where.action)
        if where.target:
            query = query.where(audit_log.c.target.contains(where.target, autoescape=True))
        if where.since:
            query = query.where(audit_log.c.at >= where.since)
        if where.until:
            query = query.where(audit_log.c.at < where.until)
        if last is not None:
            query = query.where(audit_log.c.id < last)
        with store.read() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            if limit is not None and given >= limit:
                return
            given += 1
            yield {
                "id": int(row.id),
                "at": row.at.isoformat(),
                "actor": row.actor,
                "action": row.action,
                "target": row.target,
                "via": row.via,
                "details": row.details or {},
            }
        if len(rows) < page:
            return
        last = rows[-1].id


def actors_and_actions(store: Store) -> tuple[list[str], list[str]]:
    """The distinct actors and actions in the log (the dashboard's filter choices)."""
    with store.read() as conn:
        actors = sorted(conn.scalars(select(audit_log.c.actor).distinct()))
        actions = sorted(conn.scalars(select(audit_log.c.action).distinct()))
    return actors, actions


def details_text(details: dict[str, Any]) -> str:
    """`key=value` pairs, for tables and CSV."""
    return ", ".join(f"{k}={v}" for k, v in details.items() if v is not None)


def csv_rows(found: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Iterator[list[Any]]:
    """Header, then one row per entry (details as text)."""
    yield list(COLUMNS)
    for e in found:
        yield [e[c] if c != "details" else details_text(e[c]) for c in COLUMNS]
