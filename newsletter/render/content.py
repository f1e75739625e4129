"""What a message says: digest items, event and session details, the sign-on deadline.

Builds the template context for one occurrence (real data) or for a preview (sample data). Feed
items were sanitised at ingest; their HTML is cleaned again here with a narrow allow-list, and every
text is escaped by the templates, so a hostile item can neither break the layout nor inject anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import nh3
from markupsafe import Markup
from sqlalchemy import func, select

from newsletter.campaigns import Campaign, Event, Session
from newsletter.render import formatting
from newsletter.store.tables import occurrences

SUMMARY_TAGS = {"p", "br", "a", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote"}
SUMMARY_LIMIT = 600  # characters of text; longer summaries are cut at a word
FIRST_DIGEST_WINDOW = timedelta(days=7)  # with no digest sent yet, "new" means new in the last week


def _defuse(text: str) -> str:
    # "%%" starts a personal placeholder; feed text must never be able to produce one.
    return text.replace("%%", "%\u2060%")


def clean_summary(html: str) -> Markup:
    """Item HTML reduced to simple inline markup with safe links only."""
    cleaned = nh3.clean(
        html or "",
        tags=SUMMARY_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener",
        strip_comments=True,
    )
    return Markup(_defuse(cleaned))  # noqa: S704 - cleaned by nh3 just above


def _get(item: Any, key: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def item_view(item: Any, language: str, note: bool) -> dict[str, Any]:
    """One feed item as the templates see it; `note` says it is in another language than the reader's."""
    item_language = _get(item, "language") or language
    summary = _get(item, "summary_html") or _get(item, "content_html") or ""
    return {
        "title": _defuse(str(_get(item, "title", "") or "")),
        "url": str(_get(item, "link", "") or _get(item, "url", "") or ""),
        "summary": clean_summary(_shorten(str(summary))),
        "published": _get(item, "published_at") or _get(item, "first_seen_at"),
        "categories": [str(c) for c in (_get(item, "categories") or [])][:3],
        "note": note,
        "language": item_language,
        "language_name": formatting.language_name(item_language, language),
    }


def _shorten(html: str) -> str:
    if len(html) <= SUMMARY_LIMIT * 2:
        return html
    text = nh3.clean(html, tags=set())
    return text[:SUMMARY_LIMIT].rsplit(" ", 1)[0] + " …"


def digest_items(
    conn: Any, since: datetime, chain: Sequence[str], categories: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """Items since `since` in the reader's language; if there are none, those of the next language
    of the fallback chain that has some, each marked as being in another language."""
    from newsletter.feeds.query import items_since

    for position, language in enumerate(chain):
        found = list(items_since(conn, since, language=language, categories=list(categories), limit=limit))
        if found:
            return [item_view(item, chain[0], note=position > 0) for item in found]
    return []


def digest_since(conn: Any, campaign_id: str, due_at: datetime) -> datetime:
    """Where a digest due at `due_at` starts: the due time of the campaign's previous occurrence that
    went out (or is going out), or FIRST_DIGEST_WINDOW before. The one rule for what is "new", used
    by the message, by `only_if_new_items` when it fires, and by the plan's new-item counts."""
    previous = conn.execute(
        select(func.max(occurrences.c.due_at)).where(
            occurrences.c.campaign == campaign_id,
            occurrences.c.status.in_(("sending", "sent")),
            occurrences.c.due_at < due_at,
        )
    ).scalar()
    if previous is None:
        return due_at - FIRST_DIGEST_WINDOW
    return previous if previous.tzinfo else previous.replace(tzinfo=due_at.tzinfo)


def _localized(texts: Mapping[str, str], chain: Sequence[str]) -> str:
    for language in chain:
        if texts.get(language):
            return texts[language]
    return next(iter(texts.values()), "")


def session_view(session: Session, event: Event, chain: Sequence[str]) -> dict[str, Any]:
    return {
        "id": session.id,
        "title": _localized(session.title or event.title, chain),
        "start": session.start,
        "end": session.end,
        "timezone": session.timezone,
        "join_url": session.join_url,
        "registration_url": session.registration_url or event.url,
        "language": session.language,
        "language_name": formatting.language_name(session.language, chain[0]),
    }


def event_view(event: Event, chain: Sequence[str], session_id: str | None = None) -> dict[str, Any]:
    """An event (or one of its sessions) for the templates, titles in the reader's language."""
    session = event.session(session_id) if session_id else None
    if session is None:
        session = next((s for s in event.sessions if s.language == chain[0]), None)
    view: dict[str, Any] = {
        "id": event.id,
        "kind": event.kind,
        "title": _localized(event.title, chain),
        "description": _localized(event.description, chain) if event.description else "",
        "start": event.start,
        "end": event.end,
        "timezone": event.timezone,
        "join_url": "",
        "registration_url": event.url,
        "language_name": "",
        "sessions": [],
    }
    if session is not None:
        view.update(session_view(session, event, chain))
        view["description"] = view["description"] if event.description else ""
    view["event_id"], view["session_id"] = event.id, session.id if session is not None else ""
    view["cancelled"] = event.cancelled
    view["sessions"] = [session_view(s, event, chain) for s in event.sessions if s is not session]
    return view


def occurrence_context(
    conn: Any,
    *,
    campaign: Campaign,
    event: Event | None,
    session_id: str | None,
    chain: Sequence[str],
    due_at: datetime,
) -> dict[str, Any]:
    """The template context of one occurrence in the first language of `chain`."""
    context: dict[str, Any] = {}
    if campaign.template == "digest":
        since = digest_since(conn, campaign.id, due_at)
        context["items"] = digest_items(conn, since, chain, campaign.categories, campaign.trigger.max_items)
    if event is not None:
        context["event"] = event_view(event, chain, session_id)
        if not campaign.audience.lists:  # registrants (or those reminded), not a list's subscribers
            context["registered_event"] = context["event"]["title"]
        # Registrants get the join link, the others the registration link (audience fields).
        if campaign.audience.registered_for:
            context["event"]["registration_url"] = ""
        elif campaign.audience.not_registered_for:
            context["event"]["join_url"] = ""
        if event.kind == "deadline":
            context["deadline"] = context["event"]
            context["sign_on_url"] = event.url
    return context
