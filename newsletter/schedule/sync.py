"""The schedule meets the store: the site's plan with stored states laid over, and reconciling.

`plan.py` stays pure (no store, no clock); this module gathers what it needs (audience sizes and zones,
new items since the last digest, stored occurrences), calls it, and writes what changed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from newsletter.campaigns import Schedules
from newsletter.schedule.inputs import audience_inputs, items_since_last, recipients_by_occurrence
from newsletter.schedule.load import load_schedules
from newsletter.schedule.moves import moved_after_reminders, record_calendar
from newsletter.schedule.occurrences import (
    ACTIVE,
    HORIZON_DAYS,
    LOOKBACK,
    Changes,
    apply,
    diff,
    stored_by_key,
)
from newsletter.schedule.plan import PlannedSend, announced, plan, segment_of
from newsletter.store.tables import occurrences


def plan_for_site(
    site: Any, now: datetime, days: int = 30, schedules: Schedules | None = None
) -> list[PlannedSend]:
    """The site's plan at `now`: audiences counted in the store, stored states laid over."""
    schedules = schedules or load_schedules(site)
    sizes, timezones = audience_inputs(site.store, schedules, now)
    moved = moved_after_reminders(site.store, schedules)
    news = items_since_last(site.store, schedules, now)
    planned = plan(
        schedules,
        audience_sizes=sizes,
        audience_timezones=timezones,
        new_items=news,
        now=now,
        days=days,
        fallback=site.fallback_chain,
        moved=moved,
    )
    stored = stored_by_key(site.store, since=now - LOOKBACK, until=now + timedelta(days=days))
    merged = []
    for send in planned:
        row = stored.pop(send.key, None)
        if row is not None:
            reason = row.reason or send.reason
            if row.status in ("sending", "sent") and row.not_after and row.not_after != send.not_after:
                reason = announced(reason, row.not_after, send.not_after)
            send = replace(send, status=row.status, reason=reason, occurrence_id=row.id)
        merged.append(send)
    # Stored occurrences the plan no longer shows (missed, failed, sent, cancelled, ad hoc) stay visible.
    for row in stored.values():
        if row.status == "scheduled" and row.due_at >= now:
            continue
        change = moved.get((row.event_id or "", row.session or ""))
        reason = row.reason
        if change is not None and row.not_after == change.announced:
            reason = announced(reason, change.announced, change.start)
        merged.append(
            PlannedSend(
                key=row.key,
                campaign=row.campaign,
                template=row.template,
                due=row.fire_at or row.due_at,
                reference=row.due_at,
                timezone=row.timezone or "UTC",
                trigger=row.why or "",
                event=row.event_id,
                session=row.session,
                languages=tuple(row.languages or ()),
                status=row.status,
                reason=reason,
                occurrence_id=row.id,
                segment=segment_of(schedules, row.campaign, row.event_id, row.session),
            )
        )
    # Once the send engine has written an occurrence's ledger, its rows are the audience (the plan's
    # count is of who would get it now: nobody, for one already sent).
    ledger = recipients_by_occurrence(site.store, [s.occurrence_id for s in merged if s.occurrence_id])
    merged = [
        replace(s, audience=sum(counted.values()), audience_by_language=counted)
        if (counted := ledger.get(s.occurrence_id or 0))
        else s
        for s in merged
    ]
    merged.sort(key=lambda s: (s.due, s.campaign, s.key))
    return merged


def reconcile(
    site: Any, now: datetime, schedules: Schedules | None = None, days: int = HORIZON_DAYS
) -> Changes:
    """Bring the stored occurrences in line with the site's plan at `now`; returns what changed."""
    schedules = schedules or load_schedules(site)
    _sizes, zones = audience_inputs(site.store, schedules, now)
    record_calendar(site, schedules, now)
    planned = plan(
        schedules,
        audience_sizes={},
        audience_timezones=zones,
        now=now,
        days=days,
        start=now - LOOKBACK,
        moved=moved_after_reminders(site.store, schedules),
    )
    until = now + timedelta(days=days)
    with site.store.read() as conn:
        rows = conn.execute(
            select(occurrences).where(
                or_(occurrences.c.due_at >= now - LOOKBACK, occurrences.c.status.in_(ACTIVE))
            )
        ).all()
    changes = diff(planned, rows, schedules, now, until, since=now - LOOKBACK)
    apply(site.store, changes, now)
    return changes
