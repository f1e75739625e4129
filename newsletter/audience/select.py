"""Who a campaign goes to: one query, used to count (the plan) and to stream (the sender).

One row per person even when they are on several targeted lists; only `confirmed` subscriptions
on active lists; never a suppressed address (forgotten people are gone already; bounced,
complained and unsubscribed ones have that status on their subscription).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select

from newsletter.audience.regions import countries_of
from newsletter.audience.segments import registration_conditions, segment_conditions
from newsletter.campaigns import Audience
from newsletter.store import Store
from newsletter.store.tables import lists, subscribers, subscriptions

COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.language,
    subscribers.c.timezone,
    subscribers.c.country,
)


def audience_query(audience: Audience, now: datetime | None = None) -> Select[Any]:
    """SELECT the audience's subscribers (COLUMNS), ordered by id for keyset pagination.

    `now` is the time of selection, needed by a behavioural segment with `within:`. An audience with
    no lists reaches registrants (`registered_for:`) whether or not they are on any list.
    """
    query = select(*COLUMNS)
    if audience.lists or not (audience.registered_for or audience.reminded_for):
        on_lists = exists().where(
            subscriptions.c.subscriber_id == subscribers.c.id,
            subscriptions.c.status == "confirmed",
            subscriptions.c.list_id == lists.c.id,
            lists.c.slug.in_(audience.lists),
            lists.c.active.is_(True),
        )
        query = query.where(on_lists)
    # Otherwise registrants (or those reminded of an event), on a list or not: registering was consent
    # to hear about that webinar.
    # Suppressed addresses (unsubscribed from everything, bounced, complained) are left out when queued.
    query = query.where(*registration_conditions(audience), *segment_conditions(audience, now))
    if audience.languages:
        query = query.where(subscribers.c.language.in_(audience.languages))
    countries = set(audience.countries) | countries_of(audience.regions)
    if countries:
        query = query.where(subscribers.c.country.in_(sorted(countries)))
    for key, value in audience.attributes.items():
        query = query.where(subscribers.c.attributes[key].as_string() == str(value))
    return query.order_by(subscribers.c.id)


def count_audience(store: Store, audience: Audience, now: datetime | None = None) -> dict[str, int]:
    """Audience size per subscriber language."""
    inner = audience_query(audience, now).order_by(None).subquery()
    with store.read() as conn:
        rows = conn.execute(select(inner.c.language, func.count()).group_by(inner.c.language)).all()
    return {lang: int(n) for lang, n in rows}


def stream_audience(
    store: Store, audience: Audience, page: int = 2000, after_id: int = 0, now: datetime | None = None
) -> Iterator[Any]:
    """The audience's rows in id order, a page at a time (keyset: memory flat in the audience's size)."""
    base = audience_query(audience, now)
    last = after_id
    while True:
        with store.read() as conn:
            rows = conn.execute(base.where(subscribers.c.id > last).limit(page)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
