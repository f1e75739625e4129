"""Feed bytes and response headers in, sanitised items out. Pure: no network, no database, no clock."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser

from newsletter.feeds.sanitize import (
    clean_html,
    first_image,
    html_to_text,
    plain_to_html,
    printable,
    safe_url,
)

__all__ = ["ParsedItem", "ParsedFeed", "parse_feed", "normalize_language"]

HTML_TYPES = {"text/html", "application/xhtml+xml", "html", "xhtml"}
EXCERPT_CHARS = 280


@dataclass(frozen=True)
class ParsedItem:
    guid_key: str  # what the item is deduplicated on within its feed
    guid: str | None
    title: str  # plain text
    link: str
    summary_html: str  # sanitised
    content_html: str  # sanitised
    author: str
    published_at: datetime | None
    updated_at: datetime | None
    language: str | None
    categories: tuple[str, ...]
    image_url: str | None
    content_hash: str


@dataclass
class ParsedFeed:
    items: list[ParsedItem] = field(default_factory=list)
    title: str = ""
    warning: str | None = None  # parsed, but the feed is not well-formed
    error: str | None = None  # nothing usable came out
    filtered: int = 0  # entries left out by the feed's category filter
    duplicates: int = 0  # entries repeating an earlier entry's id in the same document


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    languages: Sequence[str],
    default_language: str,
    declared_language: str | None = None,
    categories: Sequence[str] = (),
) -> ParsedFeed:
    """Parse one feed document.

    `headers` are the response headers (Content-Type gives the charset); `url` is where the document
    was found, the base for relative links; `declared_language` wins over what the feed says;
    `categories`, when given, keeps only entries carrying at least one of them (case-insensitive).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    # No Content-Type (a local file): let the BOM and the XML declaration decide the encoding.
    lowered.setdefault("content-type", "application/xml")
    if safe_url(url):
        lowered.setdefault("content-location", url)
    try:
        # Handing over bytes (never a URL or path) keeps feedparser's own HTTP and file access out.
        # Its sanitiser stays on; its relative-link pass is off because clean_html resolves links
        # against each element's xml:base (detail["base"]) anyway, and that pass was half the time.
        parsed = feedparser.parse(body, response_headers=lowered, resolve_relative_uris=False)
    except Exception as exc:  # noqa: BLE001 - a parser crash on hostile input is that feed's error only
        return ParsedFeed(error=f"feed could not be parsed: {type(exc).__name__}: {exc}")

    result = ParsedFeed(title=html_to_text(parsed.feed.get("title", "")))
    problem = _bozo_message(parsed) if parsed.get("bozo") else None
    if not parsed.entries:
        if problem:
            result.error = problem
        elif not parsed.get("version"):
            result.error = "no RSS or Atom feed found in the document"
        return result
    result.warning = problem

    feed_language = parsed.feed.get("language") or lowered.get("content-language")
    wanted = {c.strip().lower() for c in categories if c.strip()}
    seen: set[str] = set()
    for entry in parsed.entries:
        item = _item(entry, url, languages, default_language, declared_language, feed_language)
        if wanted and not wanted & {c.lower() for c in item.categories}:
            result.filtered += 1
            continue
        if item.guid_key in seen:
            result.duplicates += 1
            continue
        seen.add(item.guid_key)
        result.items.append(item)
    return result


def _bozo_message(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    name = type(exc).__name__ if exc is not None else "error"
    return f"not a well-formed feed ({name}: {exc})"


def _item(
    entry: Any,
    feed_url: str,
    languages: Sequence[str],
    default_language: str,
    declared_language: str | None,
    feed_language: str | None,
) -> ParsedItem:
    link = safe_url(entry.get("link"), feed_url if safe_url(feed_url) else None) or ""
    base = link or (feed_url if safe_url(feed_url) else None)

    title_detail = entry.get("title_detail") or {}
    # Titles are stored as plain text. Tags are stripped even from "text/plain" titles: markup in a
    # title is a sloppy or hostile feed, and a template that forgets to escape must still be safe.
    title = html_to_text(entry.get("title", "") or "")

    content_detail = _best_content(entry.get("content") or [])
    summary_detail = entry.get("summary_detail")
    content_html = _fragment(content_detail, base) if content_detail else ""
    summary_html = _fragment(summary_detail, base) if summary_detail else ""
    if not content_html:
        content_html = summary_html
    if not summary_html and content_html:
        summary_html = plain_to_html(_excerpt(html_to_text(content_html)))

    tags: list[str] = []
    for tag in entry.get("tags") or []:
        term = " ".join(printable(str(tag.get("term") or tag.get("label") or "")).split())
        if term and term.lower() not in {t.lower() for t in tags}:
            tags.append(term)

    spoken = None
    for detail in (content_detail, summary_detail, title_detail):
        if detail and detail.get("language"):
            spoken = detail["language"]
            break
    language = declared_language or normalize_language(
        spoken or feed_language or "", languages, default_language
    )

    guid = (entry.get("id") or "").strip() or None
    if guid:
        guid_key = "guid:" + _sha(guid)
    elif link:
        guid_key = "link:" + _sha(link)
    else:
        guid_key = "hash:" + _sha(title + "\x1f" + html_to_text(content_html))

    author = " ".join(printable(str(entry.get("author") or "")).split())
    image = _image(entry, base) or first_image(content_html) or first_image(summary_html)
    digest = _sha("\x1f".join([title, link, summary_html, content_html, author, *tags, image or ""]))
    return ParsedItem(
        guid_key=guid_key,
        guid=guid,
        title=title,
        link=link,
        summary_html=summary_html,
        content_html=content_html,
        author=author,
        # dict.get: feedparser's own get maps a missing updated_parsed to published_parsed, with a warning.
        published_at=_when(dict.get(entry, "published_parsed")),
        updated_at=_when(dict.get(entry, "updated_parsed")),
        language=language,
        categories=tuple(tags),
        image_url=image,
        content_hash=digest,
    )


def _best_content(contents: list[Any]) -> Any:
    """The richest of an entry's content elements: HTML before plain text."""
    for detail in contents:
        if detail.get("type") in HTML_TYPES:
            return detail
    return contents[0] if contents else None


def _fragment(detail: Any, base: str | None) -> str:
    value = detail.get("value") or ""
    detail_base = safe_url(detail.get("base")) or base
    if detail.get("type") in HTML_TYPES:
        return clean_html(value, detail_base)
    # text/plain is not touched by feedparser's sanitiser: what looks like markup is text here.
    return plain_to_html(value)


def _image(entry: Any, base: str | None) -> str | None:
    """An enclosed or attached image (enclosure, media:content, media:thumbnail), over http(s) only."""
    for enclosure in entry.get("enclosures") or []:
        if str(enclosure.get("type", "")).startswith("image/"):
            url = safe_url(enclosure.get("href"), base)
            if url:
                return url
    for media in entry.get("media_content") or []:
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            url = safe_url(media.get("url"), base)
            if url:
                return url
    for thumb in entry.get("media_thumbnail") or []:
        url = safe_url(thumb.get("url"), base)
        if url:
            return url
    return None


def normalize_language(tag: str, languages: Sequence[str], default_language: str) -> str:
    """A feed's language tag in the site's spelling: "fr-FR" -> "fr"; nothing -> the default.

    A tag the site does not offer is kept as its primary subtag (e.g. "de"), so such items
    match no site language instead of being passed off as another one.
    """
    tag = tag.strip().replace("_", "-").lower()
    if not tag:
        return default_language
    for lang in languages:
        if lang.lower() == tag:
            return lang
    primary = tag.split("-")[0]
    for lang in languages:
        if lang.lower() == primary:
            return lang
    for lang in languages:
        if lang.lower().split("-")[0] == primary:
            return lang
    return primary


def _excerpt(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    cut = text[:EXCERPT_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + "…"


def _when(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
