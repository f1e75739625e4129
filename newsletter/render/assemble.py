"""The one message assembler: campaign + event + language -> template context -> `prepare()`.

Every message of a campaign is made here, whatever asks for it: the send engine (a stored occurrence,
tracked), `send --test` and `--dry-run` (the campaign as it would go now, untracked), previews and the
dashboard (with sample data where the store has none yet). Campaigns come in loaded (`Schedules`);
nothing here reads a site file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from newsletter.audience.select import count_audience
from newsletter.campaigns import Campaign, Event, Schedules
from newsletter.errors import InputError, RenderError
from newsletter.render import content
from newsletter.render.environment import template_names
from newsletter.render.links import register_links
from newsletter.render.markdown import render_body
from newsletter.render.message import Prepared
from newsletter.render.prepare import prepare, resolve_language, sample_context, track
from newsletter.render.samples import SAMPLE_BODY
from newsletter.site import Site
from newsletter.store.tables import lists, occurrences


@dataclass
class Assembly:
    """What `prepare()` is given for one campaign (or bare template) in one language."""

    template: str
    context: dict[str, Any]
    campaign: Campaign | None
    options: dict[str, Any] = field(default_factory=dict)  # prepare()'s keyword arguments
    data: str = "real"  # "sample" when sample items or a sample event stand in


def _event(schedules: Schedules, event_id: str | None, what: str) -> Event | None:
    if not event_id:
        return None
    event = schedules.events.get(event_id)
    if event is None:
        known = ", ".join(schedules.events) or "none"
        raise InputError(f"{what}: event {event_id!r} is not in {schedules.source}; events: {known}")
    return event


def list_fields(conn: Any, campaign: Campaign, language: str) -> dict[str, Any]:
    """Sender, postal address, list name and slug for `prepare`, from the campaign's first list."""
    mlist = None
    if campaign.audience.lists:
        mlist = conn.execute(select(lists).where(lists.c.slug == campaign.audience.lists[0])).first()
    else:  # registrants of a webinar: the site's first list speaks for the hub (sender, postal address)
        mlist = conn.execute(
            select(lists).where(lists.c.active.is_(True)).order_by(lists.c.id).limit(1)
        ).first()
    if mlist is None:
        return {"sender": None, "postal_address": "", "list_name": "", "list_slug": ""}
    names = mlist.name or {}
    return {
        "sender": (mlist.sender_name, mlist.sender_email),
        "postal_address": mlist.postal_address,
        "list_name": names.get(language) or names.get(mlist.default_language) or mlist.slug,
        "list_slug": mlist.slug if campaign.audience.lists else "",
    }


def assemble(
    site: Site,
    schedules: Schedules,
    name: str,
    language: str,
    due_at: datetime,
    *,
    event_id: str | None = None,
    session_id: str | None = None,
    samples: bool = False,
) -> Assembly:
    """The context of campaign `name` in `language` for a send due at `due_at`.

    `event_id` defaults to the campaign's trigger event. With `samples`, sample items and events fill
    in what the store lacks, and `name` may also be a bare template (previews, checks).
    """
    campaign = schedules.campaigns.get(name)
    base = sample_context(site, language, due_at) if samples else {}
    if campaign is None:
        if samples and name in template_names(site.templates_dir):
            base["content"] = render_body(SAMPLE_BODY).mjml  # what `message` and `{{ content }}` show
            return Assembly(name, base, None, {"list_name": site.name}, data="sample")
        known = ", ".join(schedules.campaigns) or "none"
        raise InputError(f"no campaign {name!r} in {schedules.source}; campaigns: {known}")
    event = _event(schedules, event_id or campaign.trigger.event, f"campaign {name}")
    chain = site.fallback_chain(language)
    with site.store.read() as conn:
        found = content.occurrence_context(
            conn, campaign=campaign, event=event, session_id=session_id, chain=chain, due_at=due_at
        )
        fields = list_fields(conn, campaign, language)
    data = "real"
    if samples:
        if campaign.template == "digest" and not found.get("items"):
            found.pop("items", None)  # the sample items stand in
        if event is None and not found.get("items"):
            data = "sample"
        found = {**base, **found}
        fields["list_name"] = fields["list_name"] or site.name
    options = {
        "campaign_id": campaign.id,
        "subject": campaign.subject.get(language),
        "preheader": campaign.preheader.get(language),
        "utm": campaign.utm,
        "missing_translation": campaign.missing_translation,
        "content": campaign.content,
        "archive": campaign.archive,
        **fields,
    }
    return Assembly(campaign.template, found, campaign, options, data)


def prepare_campaign(
    site: Site,
    schedules: Schedules,
    name: str,
    language: str,
    now: datetime,
    *,
    event_id: str | None = None,
    samples: bool = False,
    strict: bool = False,
    missing_translation: str | None = None,
) -> tuple[Prepared, Assembly]:
    """Campaign `name` in `language` as it would go out now, links untracked (no occurrence).

    `missing_translation` overrides the campaign's (previews show what a fallback reader gets)."""
    found = assemble(site, schedules, name, language, now, event_id=event_id, samples=samples)
    extra: dict[str, Any] = {"strict": strict}
    if missing_translation is not None:
        extra["missing_translation"] = missing_translation
    return _prepare(site, found, language, now, **extra), found


def prepare_occurrence(
    site: Site, schedules: Schedules, occurrence_id: int, language: str, now: datetime
) -> Prepared:
    """The message of a stored occurrence in `language`; tracked links registered when it tracks."""
    with site.store.read() as conn:
        row = conn.execute(select(occurrences).where(occurrences.c.id == occurrence_id)).first()
    if row is None:
        raise RenderError(f"occurrence {occurrence_id}: no such occurrence (see `newsletter plan`)")
    campaign = schedules.campaigns.get(row.campaign)
    where = f"is not in {schedules.source}"
    if campaign is None:
        raise RenderError(f"occurrence {occurrence_id}: campaign {row.campaign!r} {where}")
    if row.event_id and row.event_id not in schedules.events:
        raise RenderError(f"occurrence {occurrence_id}: event {row.event_id!r} {where}")
    found = assemble(
        site, schedules, row.campaign, language, row.due_at, event_id=row.event_id, session_id=row.session
    )
    attachments = []
    event = schedules.events.get(row.event_id) if row.event_id else None
    if campaign.attach_ics and event is not None:
        attachments.append(_calendar_file(site, event, row.session, language, now))
    prepared = _prepare(site, found, language, now, occurrence_id=occurrence_id, attachments=attachments)
    return tracked(site.store, prepared, now) if campaign.track else prepared


def _calendar_file(
    site: Site, event: Event, session_id: str | None, language: str, now: datetime
) -> tuple[str, str, bytes]:
    """The event's (or session's) .ics as an attachment, with the SEQUENCE the public file has."""
    from newsletter.render import ics
    from newsletter.render.calendar import publish

    session = event.session(session_id) if session_id else None
    item = ics.entry(event, session, language, site.fallback_chain, ics.host_of(site.settings["base_url"]))
    name = f"{event.id}-{session.id}.ics" if session else f"{event.id}.ics"
    return (
        name,
        "text/calendar; charset=utf-8; method=PUBLISH",
        ics.to_ics(publish(site.store, [item], now), now),
    )


def _prepare(site: Site, found: Assembly, language: str, now: datetime, **extra: Any) -> Prepared:
    options = {"campaign_id": found.template, **found.options, **extra}
    return prepare(
        site, template=found.template, language=language, context=found.context, now=now, **options
    )


def tracked(store: Any, prepared: Prepared, now: datetime) -> Prepared:
    """`prepared` (of an occurrence) with its links registered in the store and signed for tracking."""
    if prepared.occurrence_id is None:
        raise RenderError("only the message of a stored occurrence can be tracked")
    ids = register_links(
        store,
        occurrence_id=prepared.occurrence_id,
        campaign_id=prepared.campaign_id,
        language=prepared.language,
        found=[(url, label) for _, url, label in prepared.links],
        now=now,
    )
    return track(prepared, ids)


@dataclass(frozen=True)
class LanguagePlan:
    language: str
    recipients: int
    subject: str
    html_bytes: int
    error: str = ""  # why this language does not render


def language_plans(
    site: Site, schedules: Schedules, name: str, now: datetime, event_id: str | None = None
) -> list[LanguagePlan]:
    """Per language the campaign would go in: recipients (after fallback) and the rendered message."""
    campaign = schedules.campaigns.get(name)
    if campaign is None:
        known = ", ".join(schedules.campaigns) or "none"
        raise InputError(f"no campaign {name!r} in {schedules.source}; campaigns: {known}")
    per_language: dict[str, int] = {}
    for language, n in count_audience(site.store, campaign.audience, now).items():
        resolved = resolve_language(site, language, campaign.languages)
        per_language[resolved] = per_language.get(resolved, 0) + n
    plans = []
    for language in sorted(per_language):
        prepared, _ = prepare_campaign(site, schedules, name, language, now, event_id=event_id)
        plans.append(
            LanguagePlan(language, per_language[language], prepared.subject, len(prepared.html.encode()))
        )
    return plans
