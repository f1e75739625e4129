"""Events that moved after their reminders went out: what `on_change` campaigns and the plan report.

A sent reminder keeps the start it announced (`occurrences.not_after`); when the event or session
now starts at another time, it has moved. When the new time was first seen comes from
`calendar_entries` (reconcile records every entry there, and so do the public calendar files).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from newsletter.campaigns import Schedules
from newsletter.store import Store
from newsletter.store.tables import calendar_entries, occurrences


@dataclass(frozen=True)
class Moved:
    """An event or session that starts at another time than sent reminders announced."""

    event: str
    session: str  # "" for the event itself
    announced: datetime  # the start the latest sent reminder gave (UTC)
    start: datetime  # the start now in schedules.yaml (UTC)
    noticed_at: datetime | None = None  # when the store first saw the new time (calendar_entries)


def moved_after_reminders(store: Store, schedules: Schedules) -> dict[tuple[str, str], Moved]:
    """Events and sessions that now start at another time than their sent reminders announced.

    A reminder stores the start it announced as `not_after`; the time the new start was first seen
    comes from `calendar_entries` (recorded by reconcile and by the calendar files).
    """
    with store.read() as conn:
        announced = conn.execute(
            select(
                occurrences.c.event_id, occurrences.c.session, occurrences.c.not_after, occurrences.c.due_at
            )
            .where(occurrences.c.status.in_(("sending", "sent")), occurrences.c.not_after.isnot(None))
            .order_by(occurrences.c.due_at)
        ).all()
        seen = {
            (r.event_id, r.session): r
            for r in conn.execute(
                select(
                    calendar_entries.c.event_id,
                    calendar_entries.c.session,
                    calendar_entries.c.start,
                    calendar_entries.c.changed_at,
                )
            )
        }
    out: dict[tuple[str, str], Moved] = {}
    for row in announced:  # in order sent: the latest reminder with another start wins
        event = schedules.events.get(row.event_id or "")
        if event is None:
            continue
        target = event.session(row.session) if row.session else event
        if target is None:
            continue
        start = target.start.astimezone(UTC)
        key = (event.id, row.session or "")
        if row.not_after == start:
            continue  # this one announced the current time; an earlier one may not have
        entry = seen.get(key)
        noticed = entry.changed_at if entry is not None and entry.start == start else None
        out[key] = Moved(event.id, row.session or "", row.not_after, start, noticed)
    return out


def record_calendar(site: Any, schedules: Schedules, now: datetime) -> None:
    """Record every event's and session's calendar entry (its SEQUENCE rises when it changed), so a
    move is noticed, and dated, when the schedule is reconciled rather than when a file is fetched."""
    from newsletter.render import ics
    from newsletter.render.calendar import publish

    host = ics.host_of(str(site.settings["base_url"]))
    publish(
        site.store,
        ics.entries(list(schedules.events.values()), site.default_language, site.fallback_chain, host),
        now,
    )
