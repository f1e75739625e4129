"""What the dashboard asks of the other stages (plan, occurrences, render, send), in one place.

A stage that cannot answer (a bad schedules.yaml, a campaign not stored yet) raises a NewsletterError
that `attempt` turns into the reason the page shows, so the rest of the page still renders.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from newsletter.errors import NewsletterError, Unavailable
from newsletter.render.assemble import prepare_occurrence
from newsletter.render.check import check_site
from newsletter.render.message import Recipient
from newsletter.render.preview import preview as write_preview
from newsletter.schedule import occurrences as schedule_occurrences
from newsletter.schedule.load import load_schedules
from newsletter.schedule.stored import StoreSource
from newsletter.schedule.sync import plan_for_site
from newsletter.send import ledger
from newsletter.send.engine import send_single
from newsletter.site import Site
from newsletter.store.tables import occurrences


def plan(site: Site, now: datetime, days: int = 30) -> list[Any]:
    """The plan's sends from a week ago to `days` ahead (PlannedSend objects)."""
    return list(plan_for_site(site, now, days))


_ACTIONS = {
    "pause": schedule_occurrences.pause,
    "resume": schedule_occurrences.resume,
    "cancel": schedule_occurrences.cancel,
}


def change_occurrence(site: Site, occurrence_id: int, action: str, now: datetime) -> Any:
    """Pause, resume or cancel an occurrence through the schedule stage."""
    if action not in _ACTIONS:
        raise Unavailable(f"unknown action {action!r}: pause, resume or cancel")
    return _ACTIONS[action](site.store, occurrence_id, now=now)


def decide_in_doubt(site: Site, batch_id: int, decision: str, by: str) -> Any:
    return ledger.decide_in_doubt(site.store, batch_id, decision, by=by)


def in_doubt_decisions() -> tuple[str, ...]:
    """The decisions the send stage accepts for an in-doubt batch."""
    return tuple(ledger.DECISIONS)


_checked: dict[tuple[Any, ...], Any] = {}


def translation_report(site: Site) -> Any:
    """The render stage's check (warnings name incomplete translations), redone only when a file changes.

    The check renders every template in every language, seconds of work: too slow for each view
    of the overview, and its answer only changes with the files under templates/.
    """
    stamp = _stamp(site)
    if stamp not in _checked:
        if len(_checked) > 20:
            _checked.clear()
        _checked[stamp] = check_site(site)
    return _checked[stamp]


@dataclass(frozen=True)
class Preview:
    language: str
    subject: str
    html: str
    text: str
    data: str  # "real" (the campaign's event, stored items) or "sample"


def _stamp(site: Site) -> tuple[Any, ...]:
    """What a rendering depends on besides its arguments: templates, schedules.yaml, content/, by content."""
    paths = sorted(p for p in site.templates_dir.rglob("*") if p.is_file())
    if site.schedules_file.exists():
        paths.append(site.schedules_file)
    if site.content_dir.is_dir():
        paths.extend(sorted(site.content_dir.rglob("*.md")))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(site.root)).encode() + b"\0" + path.read_bytes() + b"\0")
    composed = StoreSource(site).stamp()  # a composed campaign saved since
    return (digest.hexdigest(), composed, site.languages, site.default_language)


_previews: dict[tuple[Any, ...], Preview] = {}


def preview(site: Site, campaign: str, language: str, now: datetime) -> Preview:
    """`campaign` rendered in `language` for a sample recipient, as `newsletter preview` writes it.

    The preview page and its two frames per language ask for the same rendering; it is kept until a
    template or the schedules change (or the minute does), so each is rendered once.
    """
    key = (
        site.settings["database_url"],
        campaign,
        language,
        now.replace(second=0, microsecond=0),
        _stamp(site),
    )
    if key not in _previews:
        if len(_previews) > 200:
            _previews.clear()
        _previews[key] = _render_preview(site, campaign, language, now)
    return _previews[key]


def _render_preview(site: Site, campaign: str, language: str, now: datetime) -> Preview:
    with tempfile.TemporaryDirectory(prefix="nl-preview-") as tmp:
        (found,) = write_preview(site, load_schedules(site), campaign, [language], Path(tmp), now)
        files = {p.suffix: p for p in found.paths}
        message = email.message_from_bytes(files[".eml"].read_bytes(), policy=email.policy.default)
        return Preview(
            language=language,
            subject=str(message["Subject"] or ""),
            html=files[".html"].read_text(encoding="utf-8"),
            text=files[".txt"].read_text(encoding="utf-8"),
            data=found.data,
        )


def send_test(site: Site, campaign: str, language: str, to: str, now: datetime) -> str:
    """Send `to` a copy of the campaign's next (else latest) stored occurrence in `language`."""
    with site.store.read() as conn:
        due = occurrences.c.due_at
        rows = conn.execute(
            select(occurrences.c.id, due).where(occurrences.c.campaign == campaign).order_by(due)
        ).all()
    if not rows:
        raise Unavailable(
            f"campaign {campaign!r} has no stored occurrence yet: the scheduler stores them "
            f"(`newsletter plan` shows when it is due)"
        )
    upcoming = [r for r in rows if r.due_at >= now]
    occurrence_id = (upcoming[0] if upcoming else rows[-1]).id
    prepared = prepare_occurrence(site, load_schedules(site), occurrence_id, language, now)
    recipient = Recipient(send_id=0, email=to, name="", language=language)
    return send_single(site, prepared, recipient)


def campaigns(site: Site) -> list[Any]:
    """The campaigns of every source (schedules.yaml, composed ones)."""
    return list(load_schedules(site).campaigns.values())


def events(site: Site) -> list[Any]:
    return list(load_schedules(site).events.values())


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """(result, "") or (None, the reason it failed): pages show the reason instead of failing."""
    try:
        return fn(*args, **kwargs), ""
    except NewsletterError as exc:
        return None, str(exc)
