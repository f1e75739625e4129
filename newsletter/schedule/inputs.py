"""What the plan needs from the store: audience sizes and timezones, new items since the last digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select

from newsletter.audience.segments import for_session
from newsletter.audience.select import audience_query, count_audience
from newsletter.campaigns import Audience, Campaign, Schedules
from newsletter.feeds.query import count_items_since
from newsletter.render.content import digest_since
from newsletter.store import Store
from newsletter.store.tables import sends


def _audience_key(audience: Audience) -> tuple[object, ...]:
    return (repr(audience),)  # every field, segments and registrations included


def _per_session(campaign: Campaign, schedules: Schedules) -> list[tuple[str, Audience]]:
    """("campaign/session", audience) of a per-session campaign whose audience depends on the session
    (registrations, or those reminded for a change notice)."""
    audience, trigger = campaign.audience, campaign.trigger
    event = schedules.events.get(trigger.event or "")
    if event is None:
        return []
    if trigger.kind == "on_change":  # a change notice goes to those reminded of the target
        if not trigger.per_session:
            return [(campaign.id, replace(audience, reminded_for=(event.id,)))]
        return [
            (f"{campaign.id}/{s.id}", replace(audience, reminded_for=(f"{event.id}/{s.id}",)))
            for s in event.sessions
        ]
    if not (trigger.per_session and (audience.registered_for or audience.not_registered_for)):
        return []
    return [(f"{campaign.id}/{s.id}", for_session(audience, event.id, s.id)) for s in event.sessions]


def count_timezones(store: Store, audience: Audience, now: datetime | None = None) -> dict[str, int]:
    """Audience size per subscriber timezone."""
    inner = audience_query(audience, now).order_by(None).subquery()
    with store.read() as conn:
        rows = conn.execute(select(inner.c.timezone, func.count()).group_by(inner.c.timezone)).all()
    return {tz: int(n) for tz, n in rows}


def audience_inputs(
    store: Store, schedules: Schedules, now: datetime | None = None
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Per campaign: subscribers per language, and per timezone (only where local hours matter).

    Campaigns sharing an audience share one query. Behavioural segments are counted as of `now`.
    """
    by_language: dict[tuple[object, ...], dict[str, int]] = {}
    by_zone: dict[tuple[object, ...], dict[str, int]] = {}
    sizes: dict[str, dict[str, int]] = {}
    zones: dict[str, dict[str, int]] = {}
    for campaign in schedules.campaigns.values():
        key = _audience_key(campaign.audience)
        if key not in by_language:
            by_language[key] = count_audience(store, campaign.audience, now)
        sizes[campaign.id] = by_language[key]
        for session_key, audience in _per_session(campaign, schedules):
            narrowed = _audience_key(audience)
            if narrowed not in by_language:
                by_language[narrowed] = count_audience(store, audience, now)
            sizes[session_key] = by_language[narrowed]
        if campaign.local_time is not None or campaign.quiet_hours is not None:
            if key not in by_zone:
                by_zone[key] = count_timezones(store, campaign.audience, now)
            zones[campaign.id] = by_zone[key]
    return sizes, zones


def new_items_for(store: Store, campaign: Campaign, due_at: datetime) -> tuple[int, datetime]:
    """Items a digest due at `due_at` would carry (see render.content.digest_since); (count, since)."""
    with store.read() as conn:
        since = digest_since(conn, campaign.id, due_at)
        return count_items_since(conn, since, categories=campaign.categories), since


def items_since_last(store: Store, schedules: Schedules, now: datetime) -> dict[str, int]:
    """Per `only_if_new_items` campaign, new items so far."""
    return {
        c.id: new_items_for(store, c, now)[0]
        for c in schedules.campaigns.values()
        if c.trigger.only_if_new_items
    }


def recipients_by_occurrence(store: Store, occurrence_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per occurrence that has ledger rows: its recipients per language (suppressed rows left out)."""
    if not occurrence_ids:
        return {}
    out: dict[int, dict[str, int]] = {}
    with store.read() as conn:
        rows = conn.execute(
            select(sends.c.occurrence_id, sends.c.language, func.count())
            .where(sends.c.occurrence_id.in_(occurrence_ids), sends.c.status != "suppressed")
            .group_by(sends.c.occurrence_id, sends.c.language)
        ).all()
    for occurrence_id, language, n in rows:
        out.setdefault(int(occurrence_id), {})[language] = int(n)
    return out
