"""Occurrences in the store: one row per send, unique by key, reconciled with the plan.

Statuses: scheduled -> sending (claimed by the scheduler, handed to the send engine) -> sent | failed;
scheduled <-> paused; scheduled/paused -> cancelled (by hand, or dropped when the plan loses them);
scheduled -> missed (overdue beyond `late_by`, or a reminder whose event has started);
scheduled -> skipped (a digest with nothing new). The conditional UPDATE in `claim` is what makes an
occurrence fire at most once, whoever calls it and however often.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from newsletter.campaigns import Schedules, format_duration
from newsletter.errors import InputError
from newsletter.ids import parse_id
from newsletter.schedule.plan import PlannedSend, occurrence_key
from newsletter.store import Store
from newsletter.store.tables import occurrences, send_plans

ACTIVE = ("scheduled", "paused")
HORIZON_DAYS = 35  # how far ahead reconcile stores occurrences (recurring ones roll forward daily)
LOOKBACK = timedelta(days=7)  # sends due this recently are still recorded (sent late or missed)
DROPPED = "dropped: "  # reason prefix of cancellations made by reconcile, not by people
ADHOC = "adhoc/"


def overdue_reason(
    due: datetime, late_by: timedelta, not_after: datetime | None, now: datetime
) -> str | None:
    """Why an occurrence due at `due` can no longer be sent at `now`, or None when it still can."""
    if not_after is not None and now >= not_after:
        return (
            f"missed: what it announces started at {not_after:%Y-%m-%d %H:%M} UTC before it could go out "
            f"(it was due {due:%Y-%m-%d %H:%M} UTC); reminders are never sent after the start"
        )
    if now > due + late_by:
        return (
            f"missed: due {due:%Y-%m-%d %H:%M} UTC, {format_duration(now - due)} late when the scheduler "
            f"could send it, beyond its late_by window of {format_duration(late_by)}"
        )
    return None


def _values(send: PlannedSend) -> dict[str, Any]:
    return {
        "campaign": send.campaign,
        "event_id": send.event,
        "session": send.session,
        "due_at": send.reference or send.due,
        "fire_at": send.due,
        "languages": list(send.languages),
        "template": send.template,
        "timezone": send.timezone,
        "why": send.trigger,
        "not_after": send.not_after,
        "late_by": int(send.late_by.total_seconds()),
    }


def _late_by(row: Any) -> timedelta:
    return timedelta(seconds=row.late_by)


def fire_at(row: Any) -> datetime:
    """When a stored occurrence fires: its first subscriber's time, else its due time."""
    return row.fire_at or row.due_at  # type: ignore[no-any-return]


@dataclass
class Changes:
    """What reconcile does to the store (keys), computed purely from the plan and the stored rows."""

    add: list[tuple[PlannedSend, str, str]] = field(default_factory=list)  # (send, status, reason)
    move: list[tuple[int, PlannedSend, str, str]] = field(default_factory=list)  # (id, send, status, reason)
    drop: list[tuple[int, str]] = field(default_factory=list)  # (id, reason)
    miss: list[tuple[int, str]] = field(default_factory=list)  # (id, reason)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.add),
            "moved": len(self.move),
            "dropped": len(self.drop),
            "missed": len(self.miss),
        }


def diff(
    planned: Iterable[PlannedSend],
    rows: Iterable[Any],
    schedules: Schedules,
    now: datetime,
    until: datetime,
    since: datetime | None = None,
) -> Changes:
    """Changes that make the stored occurrences match the plan of [since, until) at `now`.

    A stored row outside that window is not judged by its absence from the plan (only by its
    campaign or event being gone); an overdue one is recorded as missed.
    """
    since = since or now - LOOKBACK
    changes = Changes()
    stored = {row.key: row for row in rows}
    keys = set()
    for send in planned:
        keys.add(send.key)
        row = stored.get(send.key)
        late = overdue_reason(send.due, send.late_by, send.not_after, now) if send.due < now else None
        if row is None:
            changes.add.append((send, "missed" if late else "scheduled", late or ""))
            continue
        revived = row.status == "missed" or (row.status == "cancelled" and row.reason.startswith(DROPPED))
        if revived and send.due >= now:
            changes.move.append((row.id, send, "scheduled", f"rescheduled for {send.due:%Y-%m-%d %H:%M} UTC"))
        elif row.status in ACTIVE and _values(send) != _values_of_row(row):
            changes.move.append((row.id, send, row.status, row.reason))
    for row in stored.values():
        if row.key in keys or row.key.startswith(ADHOC) or row.status not in ACTIVE:
            continue
        reason = _drop_reason(row, schedules)
        if reason is None and since <= fire_at(row) < until:
            reason = f"{DROPPED}no longer in the plan (its trigger or event changed)"
        if reason:
            changes.drop.append((row.id, reason))
    moved = {i for i, *_ in changes.move}
    dropped = {i for i, _ in changes.drop}
    for row in stored.values():
        if row.status == "scheduled" and fire_at(row) < now and row.id not in moved | dropped:
            reason = overdue_reason(fire_at(row), _late_by(row), row.not_after, now)
            if reason:
                changes.miss.append((row.id, reason))
    return changes


def _values_of_row(row: Any) -> dict[str, Any]:
    return {
        "campaign": row.campaign,
        "event_id": row.event_id,
        "session": row.session,
        "due_at": row.due_at,
        "fire_at": row.fire_at,
        "languages": list(row.languages or []),
        "template": row.template,
        "timezone": row.timezone,
        "why": row.why,
        "not_after": row.not_after,
        "late_by": row.late_by,
    }


def _drop_reason(row: Any, schedules: Schedules) -> str | None:
    if row.campaign not in schedules.campaigns:
        return f"{DROPPED}campaign {row.campaign!r} is no longer in schedules.yaml"
    if row.event_id:
        event = schedules.events.get(row.event_id)
        if event is None:
            return f"{DROPPED}event {row.event_id!r} is no longer in schedules.yaml"
        if event.cancelled:
            return f"{DROPPED}event {row.event_id!r} is cancelled"
    return None


def apply(store: Store, changes: Changes, now: datetime) -> None:
    """Write `changes` in one transaction; a key inserted meanwhile by someone else is left alone."""
    upsert = pg_insert if store.dialect == "postgresql" else sqlite_insert
    with store.write() as conn:
        for send, status, reason in changes.add:
            # ON CONFLICT: a concurrent reconcile (the scheduler and a command) may add the same key.
            values = {
                "key": send.key,
                "status": status,
                "reason": reason,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(
                upsert(occurrences)
                .values(**values, **_values(send))
                .on_conflict_do_nothing(index_elements=["key"])
            )
        for ident, send, status, reason in changes.move:
            # Only rows still in the state diff saw: a send claimed meanwhile is not moved back.
            conn.execute(
                update(occurrences)
                .where(occurrences.c.id == ident, occurrences.c.status.in_((*ACTIVE, "missed", "cancelled")))
                .values(status=status, reason=reason, updated_at=now, **_values(send))
            )
        for ident, reason in changes.drop:
            _transition(conn, ident, ACTIVE, "cancelled", reason, now)
        for ident, reason in changes.miss:
            _transition(conn, ident, ("scheduled",), "missed", reason, now)


def _transition(conn: Any, ident: int, from_: tuple[str, ...], to: str, reason: str, now: datetime) -> bool:
    result = conn.execute(
        update(occurrences)
        .where(occurrences.c.id == ident, occurrences.c.status.in_(from_))
        .values(status=to, reason=reason, updated_at=now)
    )
    return bool(result.rowcount)


# ---------------------------------------------------------------- single occurrences


def stored_by_key(store: Store, since: datetime, until: datetime) -> dict[str, Row[Any]]:
    with store.read() as conn:
        rows = conn.execute(
            select(occurrences).where(occurrences.c.due_at >= since, occurrences.c.due_at < until)
        ).all()
    return {row.key: row for row in rows}


def get(store: Store, key_or_id: str | int) -> Row[Any]:
    """The occurrence with this key or id; InputError when there is none."""
    text = str(key_or_id)
    found_id = parse_id(text)
    cond = occurrences.c.id == found_id if found_id is not None else occurrences.c.key == text
    with store.read() as conn:
        row = conn.execute(select(occurrences).where(cond)).first()
    if row is None:
        raise InputError(f"no occurrence {text!r}; `newsletter plan` lists them with their keys and ids")
    return row


def troubled(store: Store, since: datetime) -> list[Row[Any]]:
    """Occurrences due since `since` that were missed or failed, newest first (what needs attention)."""
    with store.read() as conn:
        return list(
            conn.execute(
                select(occurrences)
                .where(occurrences.c.status.in_(("missed", "failed")), occurrences.c.due_at >= since)
                .order_by(occurrences.c.due_at.desc())
            )
        )


def scheduled(store: Store) -> list[Row[Any]]:
    """Every occurrence waiting to fire, earliest first."""
    with store.read() as conn:
        return list(
            conn.execute(
                select(occurrences).where(occurrences.c.status == "scheduled").order_by(occurrences.c.due_at)
            )
        )


def _change(
    store: Store, key_or_id: str | int, from_: tuple[str, ...], to: str, reason: str, now: datetime | None
) -> Row[Any]:
    row = get(store, key_or_id)
    with store.write() as conn:
        done = _transition(conn, row.id, from_, to, reason, now or datetime.now(UTC))
    if not done:
        current = get(store, row.id)
        verb = reason.split()[0]  # paused, resumed, cancelled
        raise InputError(
            f"occurrence {row.key} (id {row.id}) is {current.status}: "
            f"only {' or '.join(from_)} ones can be {verb}"
        )
    return get(store, row.id)


def pause(store: Store, key_or_id: str | int, now: datetime | None = None) -> Row[Any]:
    """Hold a scheduled occurrence: it does not fire until resumed."""
    return _change(store, key_or_id, ("scheduled",), "paused", "paused by hand", now)


def resume(store: Store, key_or_id: str | int, now: datetime | None = None) -> Row[Any]:
    """Let a paused occurrence fire again (at once if overdue and still inside its late_by window)."""
    return _change(store, key_or_id, ("paused",), "scheduled", "resumed by hand", now)


def cancel(store: Store, key_or_id: str | int, now: datetime | None = None) -> Row[Any]:
    """Cancel a scheduled or paused occurrence for good (reconcile does not bring it back)."""
    return _change(store, key_or_id, ACTIVE, "cancelled", "cancelled by hand", now)


def claim(store: Store, ident: int, now: datetime) -> tuple[Row[Any] | None, str]:
    """Move a due occurrence from scheduled to sending, once. Returns (row or None, why not)."""
    with store.write() as conn:
        row = conn.execute(select(occurrences).where(occurrences.c.id == ident)).first()
        if row is None:
            return None, f"occurrence {ident} no longer exists"
        if row.status != "scheduled":
            return None, f"occurrence {row.key} is {row.status}"
        late = overdue_reason(fire_at(row), _late_by(row), row.not_after, now)
        if late:
            _transition(conn, ident, ("scheduled",), "missed", late, now)
            return None, late
        if not _transition(conn, ident, ("scheduled",), "sending", "", now):
            return None, f"occurrence {row.key} was claimed by another scheduler"
    return get(store, ident), ""


def interrupted(store: Store) -> list[int]:
    """Scheduled sends claimed ('sending') whose hand-over to the send engine did not finish (a crash).

    Ad hoc sends are left out: `newsletter send` enqueues those itself, perhaps at this very moment.
    """
    query = (
        select(occurrences.c.id)
        .select_from(occurrences.outerjoin(send_plans, send_plans.c.occurrence_id == occurrences.c.id))
        .where(
            occurrences.c.status == "sending",
            ~occurrences.c.key.startswith(ADHOC),
            or_(send_plans.c.status.is_(None), send_plans.c.status == "enqueuing"),
        )
        .order_by(occurrences.c.id)
    )
    with store.read() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def mark(
    store: Store, ident: int, status: str, reason: str, now: datetime, from_: tuple[str, ...] = ("sending",)
) -> bool:
    with store.write() as conn:
        return _transition(conn, ident, from_, status, reason, now)


def create_adhoc(
    store: Store,
    schedules: Schedules,
    campaign_id: str,
    *,
    event_id: str | None = None,
    session: str | None = None,
    now: datetime,
) -> int:
    """Record a send made by hand now (`newsletter send`), already 'sending'; returns its id."""
    campaign = schedules.campaigns.get(campaign_id)
    if campaign is None:
        known = ", ".join(schedules.campaigns) or "none"
        raise InputError(f"no campaign {campaign_id!r} in schedules.yaml; campaigns: {known}")
    event_id = event_id or campaign.trigger.event
    languages = campaign.languages
    timezone = "UTC"
    if event_id:
        event = schedules.events.get(event_id)
        if event is None:
            raise InputError(f"--event {event_id}: no such event; events: {', '.join(schedules.events)}")
        timezone = event.timezone
        if session:
            found = event.session(session)
            if found is None:
                ids = ", ".join(s.id for s in event.sessions) or "none"
                raise InputError(
                    f"--session {session}: event {event_id} has no such session; sessions: {ids}"
                )
            languages, timezone = (found.language,), found.timezone
    key = ADHOC + occurrence_key(campaign.id, event_id, session) + f"/{now:%Y%m%dT%H%M%S.%f}"
    values = {
        "key": key,
        "campaign": campaign.id,
        "event_id": event_id,
        "session": session,
        "due_at": now,
        "fire_at": now,
        "status": "sending",
        "reason": "sent by hand (newsletter send)",
        "languages": list(languages),
        "template": campaign.template,
        "timezone": timezone,
        "why": "by hand",
        "not_after": None,
        "late_by": int(campaign.late_by.total_seconds()),
        "created_at": now,
        "updated_at": now,
    }
    with store.write() as conn:
        return int(
            conn.execute(insert(occurrences).values(**values).returning(occurrences.c.id)).scalar_one()
        )
