"""Who a campaign goes to: one query, used to count (the plan) and to stream (the sender).

One row per person even when they are on several targeted lists; only `confirmed` subscriptions
on active lists; never a suppressed address (forgotten people are gone already; bounced,
complained and unsubscribed ones have that status on their subscription).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, exists, func, select

from newsletter.audience.regions import countries_of
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


def audience_query(audience: Audience) -> Select[Any]:
    """SELECT the audience's subscribers (COLUMNS), ordered by id for keyset pagination."""
    on_lists = exists().where(
        subscriptions.c.subscriber_id == subscribers.c.id,
        subscriptions.c.status == "confirmed",
        subscriptions.c.list_id == lists.c.id,
        lists.c.slug.in_(audience.lists),
        lists.c.active.is_(True),
    )
    query = select(*COLUMNS).where(on_lists)
    if audience.languages:
        query = query.where(subscribers.c.language.in_(audience.languages))
    countries = set(audience.countries) | countries_of(audience.regions)
    if countries:
        query = query.where(subscribers.c.country.in_(sorted(countries)))
    for key, value in audience.attributes.items():
        query = query.where(subscribers.c.attributes[key].as_string() == str(value))
    return query.order_by(subscribers.c.id)


def count_audience(store: Store, audience: Audience) -> dict[str, int]:
    """Audience size per subscriber language."""
    inner = audience_query(audience).order_by(None).subquery()
    with store.read() as conn:
        rows = conn.execute(select(inner.c.language, func.count()).group_by(inner.c.language)).all()
    return {lang: int(n) for lang, n in rows}


def stream_audience(store: Store, audience: Audience, page: int = 2000, after_id: int = 0) -> Iterator[Any]:
    """The audience's rows in id order, a page at a time (keyset: memory flat in the audience's size)."""
    base = audience_query(audience)
    last = after_id
    while True:
        with store.read() as conn:
            rows = conn.execute(base.where(subscribers.c.id > last).limit(page)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
