"""Behavioural segments and registrations: WHERE clauses over what is tracked and who registered.

Each audience field becomes one correlated EXISTS (or NOT EXISTS) on the subscriber, so the audience
query stays one SELECT that both counts (the plan) and streams with keyset pagination (the sender).
Tracked actions are reached through the send ledger: an event names its `sends` row, and that row its
subscriber and occurrence, so each probe is an index lookup per subscriber (`uq_sends_subscriber_id`,
`ix_events_send`) whatever the size of `events`. Human actions only, unless `include_machine`:
machine opens (Apple MPP, SendGrid's flag) and suspected bot clicks never put anyone in a segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, not_, or_, select

from newsletter.campaigns import Activity, Audience
from newsletter.store import sendstatus
from newsletter.store.tables import events, occurrences, registrations, sends, subscribers


def _acted(kind: str, activity: Activity, audience: Audience, now: datetime | None) -> ColumnElement[bool]:
    """EXISTS a tracked `kind` event of this subscriber matching `activity` and the audience's window."""
    where: list[Any] = [
        sends.c.subscriber_id == subscribers.c.id,
        events.c.send_id == sends.c.id,
        events.c.kind == kind,
    ]
    if not audience.include_machine:
        where.append(events.c.machine.is_(False))
    if activity.label:
        where.append(events.c.label == activity.label)
    if activity.campaigns:
        # The occurrence's campaign, not the event's copy of it: a SendGrid event may lack custom_args.
        where.append(
            sends.c.occurrence_id.in_(
                select(occurrences.c.id)
                .where(occurrences.c.campaign.in_(activity.campaigns))
                .scalar_subquery()
            )
        )
    if audience.within is not None:
        if now is None:
            raise ValueError("an audience with `within:` needs the time it is selected at (now)")
        where.append(events.c.at >= now - audience.within)
    return exists().where(*where)


def segment_conditions(audience: Audience, now: datetime | None) -> list[ColumnElement[bool]]:
    """The behavioural fields of `audience` as WHERE conditions on `subscribers`."""
    out: list[ColumnElement[bool]] = []
    if audience.clicked is not None:
        out.append(_acted("click", audience.clicked, audience, now))
    if audience.not_clicked is not None:
        out.append(not_(_acted("click", audience.not_clicked, audience, now)))
    if audience.opened is not None:
        out.append(_acted("open", audience.opened, audience, now))
    if audience.not_opened is not None:
        out.append(not_(_acted("open", audience.not_opened, audience, now)))
    if audience.converted is not None:
        converted = _acted("conversion", Activity(), audience, now)
        out.append(converted if audience.converted else not_(converted))
    return out


def _registered(targets: tuple[str, ...]) -> ColumnElement[bool]:
    """EXISTS an approved registration for one of `targets` ("event" or "event/session").

    A registration for the whole event counts for each of its sessions; a registration for a
    session counts for the event.
    """
    options = []
    for target in targets:
        event_id, _, session = target.partition("/")
        condition = registrations.c.event_id == event_id
        if session:
            condition = and_(condition, registrations.c.session.in_(("", session)))
        options.append(condition)
    return exists().where(
        registrations.c.subscriber_id == subscribers.c.id,
        registrations.c.approval == "approved",
        or_(*options),
    )


def _reminded(targets: tuple[str, ...], moved_to: datetime | None) -> ColumnElement[bool]:
    """EXISTS a reminder sent to this subscriber of one of `targets` (announcing another start)."""
    options = []
    for target in targets:
        event_id, _, session = target.partition("/")
        condition = occurrences.c.event_id == event_id
        if session:  # a reminder of the whole event counts for each of its sessions
            condition = and_(
                condition, or_(occurrences.c.session == session, occurrences.c.session.is_(None))
            )
        options.append(condition)
    where = [
        sends.c.subscriber_id == subscribers.c.id,
        sendstatus.is_sent(),
        occurrences.c.id == sends.c.occurrence_id,
        occurrences.c.not_after.isnot(None),  # a reminder: it announced a start
        or_(*options),
    ]
    if moved_to is not None:
        where.append(occurrences.c.not_after != moved_to)
    return exists().where(*where)


def registration_conditions(audience: Audience) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if audience.reminded_for:
        out.append(_reminded(audience.reminded_for, audience.moved_to))
    if audience.registered_for:
        out.append(_registered(audience.registered_for))
    if audience.not_registered_for:
        out.append(not_(_registered(audience.not_registered_for)))
    return out


def for_session(audience: Audience, event_id: str | None, session_id: str | None) -> Audience:
    """The audience of one per-session occurrence: `registered_for: EVENT` narrowed to its session."""
    from dataclasses import replace

    if not (event_id and session_id) or not (audience.registered_for or audience.not_registered_for):
        return audience

    def narrow(targets: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{t}/{session_id}" if t == event_id else t for t in targets)

    return replace(
        audience,
        registered_for=narrow(audience.registered_for),
        not_registered_for=narrow(audience.not_registered_for),
    )


def describe(audience: Audience) -> str:
    """The segment in words, for the plan and the dashboard: "clicked declaration-sign-on in signon-14d,
    did not convert, within 30d"; empty for an audience with no behavioural or registration field."""
    parts = []

    def activity(verb: str, a: Activity | None) -> None:
        if a is None:
            return
        text = verb + (f" {a.label}" if a.label else "")
        parts.append(text + (f" in {', '.join(a.campaigns)}" if a.campaigns else ""))

    if audience.registered_for:
        parts.append(f"registered for {', '.join(audience.registered_for)}")
    if audience.not_registered_for:
        parts.append(f"not registered for {', '.join(audience.not_registered_for)}")
    activity("clicked", audience.clicked)
    activity("did not click", audience.not_clicked)
    activity("opened", audience.opened)
    activity("did not open", audience.not_opened)
    if audience.converted is not None:
        parts.append("converted" if audience.converted else "did not convert")
    if audience.within is not None and audience.segmented:
        parts.append(f"within {_duration(audience.within)}")
    if audience.include_machine and audience.segmented:
        parts.append("machine actions included")
    return ", ".join(parts)


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or "0m"


def still_registered(conn: Connection, subscriber_ids: Sequence[int], targets: Sequence[str]) -> set[int]:
    """Which of `subscriber_ids` hold an approved registration for one of `targets` (claim-time check)."""
    query = select(subscribers.c.id).where(
        subscribers.c.id.in_(list(subscriber_ids)), _registered(tuple(targets))
    )
    return set(conn.scalars(query))
