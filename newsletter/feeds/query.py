"""Reading stored items: what digests and `only_if_new_items` ask, and what `newsletter feeds` shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, case, exists, func, select

from newsletter.feeds.config import FeedConfig
from newsletter.store.tables import feeds, item_categories, items

__all__ = ["Item", "items_since", "count_items_since", "list_items", "feed_overview"]


@dataclass(frozen=True)
class Item:
    id: int
    feed: str
    title: str  # plain text: escape it when rendering
    link: str
    summary_html: str  # sanitised HTML, safe in an email as is
    content_html: str  # sanitised HTML, safe in an email as is
    author: str
    published_at: datetime | None
    updated_at: datetime | None
    language: str | None
    categories: tuple[str, ...]
    image_url: str | None
    first_seen_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("published_at", "updated_at", "first_seen_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["categories"] = list(self.categories)
        return data


_COLUMNS = (
    items.c.id,
    feeds.c.name.label("feed"),
    items.c.title,
    items.c.link,
    items.c.summary_html,
    items.c.content_html,
    items.c.author,
    items.c.published_at,
    items.c.updated_at,
    items.c.language,
    items.c.categories,
    items.c.image_url,
    items.c.first_seen_at,
)
# Newest first by what the publisher says, falling back to when we first saw the item.
_NEWEST_FIRST = (func.coalesce(items.c.published_at, items.c.first_seen_at).desc(), items.c.id.desc())


def _news(
    query: Select[Any], since: datetime | None, language: str | None, categories: Sequence[str]
) -> Select[Any]:
    """Only news: items not seeded at a first pull, from feeds still declared, filtered."""
    query = query.where(items.c.seeded.is_(False), feeds.c.active.is_(True))
    if since is not None:
        query = query.where(items.c.first_seen_at > since)
    if language is not None:
        query = query.where(items.c.language == language)
    wanted = sorted({c.strip().lower() for c in categories if c.strip()})
    if wanted:
        query = query.where(
            exists().where(item_categories.c.item_id == items.c.id, item_categories.c.category.in_(wanted))
        )
    return query


def items_since(
    conn: Connection,
    since: datetime | None,
    *,
    language: str | None = None,
    categories: Sequence[str] = (),
    limit: int = 10,
) -> list[Item]:
    """Items first seen after `since` (all when None), newest first, at most `limit`.

    Items already in a feed at its first pull are never returned; `categories` keeps items in any
    of them (case-insensitive); `language` is a site language code.
    """
    query = select(*_COLUMNS).select_from(items.join(feeds, items.c.feed_id == feeds.c.id))
    query = _news(query, since, language, categories).order_by(*_NEWEST_FIRST).limit(limit)
    return [_item(row) for row in conn.execute(query)]


def count_items_since(
    conn: Connection, since: datetime | None, *, language: str | None = None, categories: Sequence[str] = ()
) -> int:
    """How many items `items_since` would return without a limit."""
    query = select(func.count()).select_from(items.join(feeds, items.c.feed_id == feeds.c.id))
    return int(conn.execute(_news(query, since, language, categories)).scalar_one())


def list_items(
    conn: Connection, *, feed: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[tuple[Item, bool]]:
    """Stored items for people to inspect, seeded ones included (flagged), newest first."""
    query = select(*_COLUMNS, items.c.seeded).select_from(items.join(feeds, items.c.feed_id == feeds.c.id))
    if feed is not None:
        query = query.where(feeds.c.name == feed)
    if since is not None:
        query = query.where(items.c.first_seen_at > since)
    return [
        (_item(row), bool(row.seeded)) for row in conn.execute(query.order_by(*_NEWEST_FIRST).limit(limit))
    ]


def feed_overview(conn: Connection, declared: Sequence[FeedConfig]) -> list[dict[str, Any]]:
    """Each declared feed with its state and item counts (a feed never pulled has no row yet)."""
    counts = {
        r.feed_id: (int(r.total), int(r.news or 0))
        for r in conn.execute(
            select(
                items.c.feed_id,
                func.count().label("total"),
                func.sum(case((items.c.seeded.is_(False), 1), else_=0)).label("news"),
            ).group_by(items.c.feed_id)
        )
    }
    rows = {r.name: r for r in conn.execute(select(feeds).where(feeds.c.active.is_(True)))}
    overview = []
    for feed in declared:
        row = rows.get(feed.name)
        total, news = counts.get(row.id, (0, 0)) if row is not None else (0, 0)
        overview.append(
            {
                "name": feed.name,
                "url": feed.url,
                "language": feed.language,
                "categories": list(feed.categories),
                "status": _status(row),
                "permanent_url": row.permanent_url if row is not None else None,
                "last_success_at": _iso(row.last_success_at) if row is not None else None,
                "last_error": row.last_error if row is not None else None,
                "last_error_at": _iso(row.last_error_at) if row is not None else None,
                "warning": row.warning if row is not None else None,
                "items": total,
                "new_items": news,
            }
        )
    return overview


def stored_feeds(conn: Connection) -> list[Any]:
    """Every stored feed row, by name."""
    return list(conn.execute(select(feeds).order_by(feeds.c.name)).all())


def failing_feeds(conn: Connection) -> list[Any]:
    """Stored feeds that are disabled or whose latest pull failed (`_status` "disabled" or "error")."""
    return [row for row in stored_feeds(conn) if _status(row) in ("disabled", "error")]


def _status(row: Any) -> str:
    if row is None or (row.last_success_at is None and row.last_error_at is None):
        return "never pulled"
    if row.disabled_reason:
        return "disabled"
    if row.last_error_at is not None and (
        row.last_success_at is None or row.last_error_at >= row.last_success_at
    ):
        return "error"
    return "warning" if row.warning else "ok"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _item(row: Any) -> Item:
    return Item(
        id=row.id,
        feed=row.feed,
        title=row.title,
        link=row.link,
        summary_html=row.summary_html,
        content_html=row.content_html,
        author=row.author,
        published_at=row.published_at,
        updated_at=row.updated_at,
        language=row.language,
        categories=tuple(row.categories or ()),
        image_url=row.image_url,
        first_seen_at=row.first_seen_at,
    )
