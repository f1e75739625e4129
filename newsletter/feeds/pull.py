"""Pull the site's feeds: fetch, parse, store, one feed at a time; one broken feed never stops the rest."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from newsletter.errors import InputError
from newsletter.feeds import store as feed_store
from newsletter.feeds.config import FeedConfig, load_feeds
from newsletter.feeds.fetch import Fetched, Fetcher
from newsletter.feeds.parse import parse_feed
from newsletter.site import Site
from newsletter.store import now_utc

__all__ = ["FeedResult", "pull_feeds", "STATUSES"]

log = logging.getLogger(__name__)

# ok: fetched and stored; not_modified: 304 or unchanged file, nothing parsed; error: retried next
# pull; gone: 410 just now, feed disabled; disabled: skipped (gone earlier); invalid: bad declaration.
STATUSES = ("ok", "not_modified", "error", "gone", "disabled", "invalid")


@dataclass
class FeedResult:
    name: str
    status: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    seeded: int = 0  # stored as already seen (first pull, or published before it): never offered as news
    error: str | None = None
    warning: str | None = None
    http_status: int | None = None
    url: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pull_feeds(
    site: Site,
    *,
    names: list[str] | None = None,
    backfill: bool = False,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[FeedResult]:
    """Pull the declared feeds (or only `names`) once and store what is new or changed.

    The first pull of a feed marks what it holds as already seen, unless `backfill`.
    `transport` replaces httpx's network transport (for tests of the network edge).
    """
    now = now or now_utc()
    config = load_feeds(site)
    results: list[FeedResult] = []
    if names:
        unknown = [n for n in names if config.named(n) is None]
        if unknown:
            declared = ", ".join(f.name for f in config.feeds) or "none"
            raise InputError(f"--feed {unknown[0]}: no such feed; declared feeds: {declared}")
        selected = [f for f in config.feeds if f.name in names]
    else:
        selected = config.feeds
        results.extend(FeedResult(name="?", status="invalid", error=e) for e in config.errors)

    with site.store.write() as conn:
        rows = feed_store.sync_feeds(conn, config.feeds, now)
    settings = site.settings
    with Fetcher(
        timeout=float(settings["feed_timeout"]),
        host_delay=float(settings["feed_host_delay"]),
        site_root=site.root,
        transport=transport,
    ) as fetcher:
        for feed in selected:
            row = rows[feed.name]
            try:
                results.append(_pull_one(site, fetcher, feed, row, backfill=backfill, now=now))
            except Exception as exc:  # noqa: BLE001 - a bug or a store hiccup on one feed must not stop the others
                log.exception("feed %s: pull failed", feed.name)
                error = f"{type(exc).__name__}: {exc}"
                try:
                    with site.store.write() as conn:
                        feed_store.record_error(conn, row.id, error, None, now)
                except Exception:  # noqa: BLE001 - already reported above
                    log.exception("feed %s: could not record the failure", feed.name)
                results.append(FeedResult(feed.name, "error", error=error, url=feed.url))
    return results


def _pull_one(
    site: Site, fetcher: Fetcher, feed: FeedConfig, row: Any, *, backfill: bool, now: datetime
) -> FeedResult:
    url = row.permanent_url or feed.url
    if row.disabled_reason:
        return FeedResult(feed.name, "disabled", error=row.disabled_reason, url=url)
    fetched = fetcher.fetch(url, etag=row.etag, last_modified=row.last_modified)
    result = FeedResult(feed.name, "error", http_status=fetched.status, url=fetched.url)
    moved = (
        fetched.permanent_url
        if fetched.permanent_url and fetched.permanent_url != row.permanent_url
        else None
    )

    if fetched.gone:
        reason = (
            f"410 Gone from {url} at {now:%Y-%m-%d %H:%M} UTC: disabled; "
            f"change its url in newsletter.toml (or remove it) to pull it again"
        )
        with site.store.write() as conn:
            feed_store.record_gone(conn, row.id, reason, now)
        result.status, result.error = "gone", reason
        return result
    if fetched.error is not None or (fetched.body is None and not fetched.not_modified):
        result.error = fetched.error or "no document"
        with site.store.write() as conn:
            feed_store.record_error(conn, row.id, result.error, fetched.status, now, permanent_url=moved)
        return result
    if fetched.not_modified:
        with site.store.write() as conn:
            feed_store.record_not_modified(conn, row.id, fetched.status, now, permanent_url=moved)
        result.status = "not_modified"
        return result

    assert fetched.body is not None
    # Parsing is CPU work: done before the write transaction opens, so the lock is held briefly.
    parsed = parse_feed(
        fetched.body,
        fetched.headers,
        url=fetched.url,
        languages=site.languages,
        default_language=site.default_language,
        declared_language=feed.language,
        categories=feed.categories,
    )
    if parsed.error is not None:
        result.error = parsed.error
        with site.store.write() as conn:
            feed_store.record_error(conn, row.id, parsed.error, fetched.status, now, permanent_url=moved)
        return result
    state = _state(fetched, parsed.warning, now, moved)
    if not row.seeded:
        state["seeded_at"] = now
    with site.store.write() as conn:
        saved = feed_store.save_items(
            conn,
            row.id,
            parsed.items,
            seed=not row.seeded and not backfill,
            now=now,
            state=state,
            old_before=row.seeded_at,
        )
    result.status = "ok"
    result.new, result.updated, result.unchanged, result.seeded = (
        saved.new,
        saved.updated,
        saved.unchanged,
        saved.seeded,
    )
    result.warning = parsed.warning
    return result


def _state(fetched: Fetched, warning: str | None, now: datetime, moved: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
        "last_status": fetched.status,
        "last_success_at": now,
        "warning": warning,
    }
    if moved:
        state["permanent_url"] = moved
    return state
