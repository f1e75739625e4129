"""Feeds and items in the store: declared feeds synced in, fetch outcomes recorded, items upserted.

Every function takes an open write connection (from `Store.write()`), so a caller decides what
one transaction holds: here, one feed's items and its state together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from newsletter.feeds.config import FeedConfig
from newsletter.feeds.parse import ParsedItem
from newsletter.store.tables import feeds, item_categories, items

__all__ = [
    "Saved",
    "sync_feeds",
    "record_error",
    "record_gone",
    "record_not_modified",
    "save_items",
    "delete_feed",
]

BATCH = 500  # rows per INSERT, well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Saved:
    new: int  # offered as news
    updated: int
    unchanged: int
    seeded: int  # stored as already seen


def sync_feeds(conn: Connection, declared: Sequence[FeedConfig], now: datetime) -> dict[str, Any]:
    """Make the feeds table match the configuration; return the rows of the declared feeds by name.

    A feed whose URL changed starts over (validators, redirect and 410 forgotten) but keeps its
    items and stays seeded. Feeds no longer declared are kept, inactive, so their items survive a
    typo in the configuration.
    """
    rows = {r.name: r for r in conn.execute(select(feeds))}
    for feed in declared:
        row = rows.get(feed.name)
        values = {"language": feed.language, "categories": list(feed.categories), "active": True}
        if row is None:
            conn.execute(
                insert(feeds).values(name=feed.name, url=feed.url, seeded=False, created_at=now, **values)
            )
            continue
        if row.url != feed.url:
            values.update(
                url=feed.url, etag=None, last_modified=None, permanent_url=None, disabled_reason=None
            )
        if any(getattr(row, k) != v for k, v in values.items()):
            conn.execute(update(feeds).where(feeds.c.id == row.id).values(**values))
    names = [f.name for f in declared]
    conn.execute(
        update(feeds).where(feeds.c.name.not_in(names), feeds.c.active.is_(True)).values(active=False)
    )
    return {r.name: r for r in conn.execute(select(feeds).where(feeds.c.name.in_(names)))}


def record_error(
    conn: Connection,
    feed_id: int,
    error: str,
    status: int | None,
    now: datetime,
    *,
    permanent_url: str | None = None,
) -> None:
    """A failed pull: kept with its time; the next pull tries again."""
    values: dict[str, Any] = {"last_error": error, "last_error_at": now, "last_status": status}
    if permanent_url:
        values["permanent_url"] = permanent_url
    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))


def record_gone(conn: Connection, feed_id: int, reason: str, now: datetime) -> None:
    """410 Gone: the feed is disabled until its URL changes in the configuration."""
    conn.execute(
        update(feeds)
        .where(feeds.c.id == feed_id)
        .values(disabled_reason=reason, last_error=reason, last_error_at=now, last_status=410)
    )


def record_not_modified(
    conn: Connection, feed_id: int, status: int | None, now: datetime, *, permanent_url: str | None = None
) -> None:
    values: dict[str, Any] = {"last_success_at": now, "last_status": status}
    if permanent_url:
        values["permanent_url"] = permanent_url
    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))


def save_items(
    conn: Connection,
    feed_id: int,
    parsed: Iterable[ParsedItem],
    *,
    seed: bool,
    now: datetime,
    state: dict[str, Any],
    old_before: datetime | None = None,
) -> Saved:
    """Insert new items, update changed ones, and record the successful pull (`state`) on the feed.

    With `seed`, new items are marked as already there: stored but never offered as news. So is an
    item published before `old_before` (the feed's first pull) that shows up only now: a feed that
    was truncated at its first pull, or that lists more of its archive today, must not flood a digest.
    """
    # Two pulls of one feed at once (two `run` instances, or `run` and a manual pull): the second waits
    # here for the first to commit, then finds its items known instead of inserting them again and
    # failing on the unique key. (SQLite's write transactions are serial already.)
    conn.execute(select(feeds.c.id).where(feeds.c.id == feed_id).with_for_update())
    known = {
        r.guid_key: (r.id, r.content_hash)
        for r in conn.execute(
            select(items.c.guid_key, items.c.id, items.c.content_hash).where(items.c.feed_id == feed_id)
        )
    }
    fresh: list[ParsedItem] = []
    updated = unchanged = 0
    for item in parsed:
        if item.guid_key not in known:
            fresh.append(item)
            continue
        item_id, digest = known[item.guid_key]
        if digest == item.content_hash:
            unchanged += 1
            continue
        conn.execute(update(items).where(items.c.id == item_id).values(changed_at=now, **_fields(item)))
        conn.execute(delete(item_categories).where(item_categories.c.item_id == item_id))
        _insert_categories(conn, [(item_id, item)])
        updated += 1

    for start in range(0, len(fresh), BATCH):
        chunk = fresh[start : start + BATCH]
        fixed = {"feed_id": feed_id, "first_seen_at": now, "changed_at": now}
        rows = [
            {**fixed, "guid_key": i.guid_key, "seeded": seed or _old(i, old_before), **_fields(i)}
            for i in chunk
        ]
        # RETURNING with executemany (SQLAlchemy's "insertmanyvalues"), in parameter order on both backends.
        result = conn.execute(insert(items).returning(items.c.id, sort_by_parameter_order=True), rows)
        _insert_categories(conn, list(zip((r.id for r in result), chunk, strict=True)))

    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(seeded=True, **state))
    old = sum(1 for i in fresh if seed or _old(i, old_before))
    return Saved(new=len(fresh) - old, updated=updated, unchanged=unchanged, seeded=old)


def _old(item: ParsedItem, old_before: datetime | None) -> bool:
    return old_before is not None and item.published_at is not None and item.published_at < old_before


def delete_feed(conn: Connection, name: str) -> bool:
    """Forget a feed and its items."""
    row = conn.execute(select(feeds.c.id).where(feeds.c.name == name)).first()
    if row is None:
        return False
    ids = select(items.c.id).where(items.c.feed_id == row.id).scalar_subquery()
    conn.execute(delete(item_categories).where(item_categories.c.item_id.in_(ids)))
    conn.execute(delete(items).where(items.c.feed_id == row.id))
    conn.execute(delete(feeds).where(feeds.c.id == row.id))
    return True


def _fields(item: ParsedItem) -> dict[str, Any]:
    return {
        "guid": item.guid,
        "title": item.title,
        "link": item.link,
        "summary_html": item.summary_html,
        "content_html": item.content_html,
        "author": item.author,
        "published_at": item.published_at,
        "updated_at": item.updated_at,
        "language": item.language,
        "categories": list(item.categories),
        "image_url": item.image_url,
        "content_hash": item.content_hash,
    }


def _insert_categories(conn: Connection, pairs: list[tuple[int, ParsedItem]]) -> None:
    rows = [
        {"item_id": item_id, "category": category}
        for item_id, item in pairs
        for category in sorted({c.lower()[:200] for c in item.categories})
    ]
    if rows:
        conn.execute(insert(item_categories), rows)
