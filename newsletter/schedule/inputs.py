"""What the plan needs from the store: audience sizes and timezones, new items since the last digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from newsletter.audience.select import audience_query, count_audience
from newsletter.campaigns import Audience, Campaign, Schedules
from newsletter.feeds.query import count_items_since
from newsletter.render.content import digest_since
from newsletter.store import Store


def _audience_key(audience: Audience) -> tuple[object, ...]:
    return (
        audience.lists,
        audience.languages,
        audience.countries,
        audience.regions,
        tuple(sorted(audience.attributes.items())),
    )


def count_timezones(store: Store, audience: Audience) -> dict[str, int]:
    """Audience size per subscriber timezone."""
    inner = audience_query(audience).order_by(None).subquery()
    with store.read() as conn:
        rows = conn.execute(select(inner.c.timezone, func.count()).group_by(inner.c.timezone)).all()
    return {tz: int(n) for tz, n in rows}


def audience_inputs(
    store: Store, schedules: Schedules
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Per campaign: subscribers per language, and per timezone (only where local hours matter).

    Campaigns sharing an audience share one query.
    """
    by_language: dict[tuple[object, ...], dict[str, int]] = {}
    by_zone: dict[tuple[object, ...], dict[str, int]] = {}
    sizes: dict[str, dict[str, int]] = {}
    zones: dict[str, dict[str, int]] = {}
    for campaign in schedules.campaigns.values():
        key = _audience_key(campaign.audience)
        if key not in by_language:
            by_language[key] = count_audience(store, campaign.audience)
        sizes[campaign.id] = by_language[key]
        if campaign.local_time is not None or campaign.quiet_hours is not None:
            if key not in by_zone:
                by_zone[key] = count_timezones(store, campaign.audience)
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
