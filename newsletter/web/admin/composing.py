"""What the composer asks of the other stages (schedule, render, send, audience), in one place."""

from __future__ import annotations

import html as htmllib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

from newsletter.audience.regions import REGIONS
from newsletter.audience.select import count_audience
from newsletter.campaigns import Audience, Campaign, Event, Schedules
from newsletter.errors import InputError
from newsletter.render.assemble import prepare_campaign
from newsletter.render.message import Prepared, Recipient
from newsletter.render.prepare import resolve_language
from newsletter.render.preview import sample_recipient
from newsletter.schedule import stored
from newsletter.schedule.compose import TEMPLATES, Built, Form, build
from newsletter.schedule.config import parse_schedules, site_lists
from newsletter.send.engine import send_single
from newsletter.site import Site


def _english(message: str, **values: Any) -> str:
    """The `_` when no request's language is given: the English text, with its values."""
    return message % values if values else message


Translate = Callable[..., str]

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def summaries(site: Site) -> list[dict[str, Any]]:
    return stored.summaries(site.store)


def blank(site: Site) -> Form:
    return Form(languages=list(site.languages), source=site.default_language, timezone="UTC")


def load(site: Site, campaign_id: str) -> tuple[Form, stored.Revision] | None:
    revision = stored.latest(site.store, campaign_id)
    if revision is None:
        return None
    return Form.from_revision(revision, revision.content(site.default_language).source), revision


def parse(site: Site, data: Any) -> Form:
    return Form.from_fields(data.get, data.getlist, list(site.languages))


def _built(site: Site, form: Form, now: datetime, creating: bool) -> tuple[Built, stored.Revision | None]:
    schedules = parse_schedules(site)
    previous = None if creating else stored.latest(site.store, form.id)
    taken = {s["id"] for s in stored.summaries(site.store)} if creating else set()
    return (
        build(site, form, schedules=schedules, previous=previous, creating=creating, taken=taken, now=now),
        previous,
    )


def save(
    site: Site,
    form: Form,
    based_on: int,
    status: str,
    by: str,
    now: datetime,
    creating: bool,
    _: Translate = _english,
) -> stored.Revision | dict[str, str]:
    """The saved revision, or the errors per field (then nothing is saved)."""
    if status == "unscheduled":
        # Unscheduling keeps the campaign as last saved, whatever the form now holds or its date says.
        previous = stored.latest(site.store, form.id)
        if previous is None:
            return {
                "_form": _(
                    "campaign %(campaign)s is not stored yet: nothing to unschedule", campaign=repr(form.id)
                )
            }
        revision = stored.save(
            site.store,
            campaign_id=form.id,
            based_on=based_on,
            status="unscheduled",
            entry=previous.entry,
            texts=previous.texts,
            by=by,
            now=now,
        )
    else:
        built, _previous = _built(site, form, now, creating)
        if built.errors:
            return built.errors
        revision = stored.save(
            site.store,
            campaign_id=form.id,
            based_on=based_on,
            status=status,  # type: ignore[arg-type]
            entry=built.entry,
            texts=built.texts,
            by=by,
            now=now,
        )
    if status != "draft":
        _reconcile(site, now)
    return revision


def _reconcile(site: Site, now: datetime) -> None:
    """Store the occurrences the new state plans (so the schedule page, plan and tests see it at once)."""
    from newsletter.schedule.sync import reconcile

    reconcile(site, now)


def page_context(
    site: Site, form: Form, now: datetime, *, revision: int, creating: bool, _: Translate = _english
) -> dict[str, Any]:
    schedules = parse_schedules(site)
    content = None
    statuses: dict[str, str] = {}
    if form.texts.get(form.source):
        probe = stored.Revision(form.id or "new", 0, "draft", {}, _probe_texts(site, form, creating), now, "")
        content = probe.content(form.source)
        statuses = dict(content.statuses(form.languages or site.languages))
    history = stored.history(site.store, form.id)[:10] if form.id and not creating else []
    counts, count_error = audience_sizes(
        site, form.lists, form.audience_languages, form.countries, form.regions, form.languages, _=_
    )
    return {
        "form": form,
        "revision": revision,
        "creating": creating,
        "languages": list(site.languages),
        "lists": site_lists(site),
        "templates": TEMPLATES,
        "events": list(schedules.events.values()),
        "regions": list(REGIONS),
        "zones": ZONES,
        "statuses": statuses,
        "history": history,
        "counts": counts,
        "count_error": count_error,
        "default_language": site.default_language,
    }


def _probe_texts(site: Site, form: Form, creating: bool) -> dict[str, dict[str, str]]:
    """The texts as they would be saved, for the translation status shown on the page."""
    previous = None if creating or not form.id else stored.latest(site.store, form.id)
    from newsletter.schedule.compose import _texts

    return _texts(form, form.languages or list(site.languages), previous, {})


def audience_sizes(
    site: Site,
    lists: list[str],
    languages: list[str],
    countries: str,
    regions: list[str],
    written: list[str],
    _: Translate = _english,
) -> tuple[dict[str, int], str]:
    """Recipients per campaign language (each reader in the first language of their chain it offers)."""
    known = set(site_lists(site))
    unknown = [slug for slug in lists if slug not in known]
    if not lists or unknown:
        if unknown:
            return {}, _("unknown list %(list)s", list=repr(unknown[0]))
        return {}, _("choose at least one list")
    audience = Audience(
        lists=tuple(lists),
        languages=tuple(languages),
        countries=tuple(c.strip().upper() for c in countries.replace(",", " ").split() if c.strip()),
        regions=tuple(r.upper() for r in regions if r.upper() in REGIONS),
    )
    offered = [lang for lang in written if lang in site.languages] or list(site.languages)
    counts: dict[str, int] = {lang: 0 for lang in offered}
    for language, n in count_audience(site.store, audience).items():
        resolved = resolve_language(site, language, offered)
        counts[resolved] = counts.get(resolved, 0) + n
    return counts, ""


def render_campaign(
    site: Site, campaign: Campaign, events: dict[str, Event], language: str, now: datetime
) -> Prepared:
    """`campaign` in `language` as it would go now, untracked (previews and test copies of drafts),
    through the one assembler; sample data stands in for an event a message campaign has not."""
    schedules = Schedules(events=events, campaigns={campaign.id: campaign}, source="the composer")
    prepared, _found = prepare_campaign(
        site, schedules, campaign.id, language, now, samples=True, missing_translation="fallback"
    )
    return prepared


def preview_html(site: Site, form: Form, language: str, now: datetime, _: Translate = _english) -> str:
    """The form as it stands, in `language`, as a sample subscriber sees it."""
    schedules = parse_schedules(site)
    # A preview needs no date in the future, nor a new id: check what renders, not what schedules.
    probe = Form(**{**form.__dict__, "id": form.id or "preview", "trigger": "at", "at": "2999-01-01T09:00"})
    built = build(site, probe, schedules=schedules, previous=None, creating=False, taken=set(), now=now)
    if built.campaign is None:
        problems = "; ".join(
            f"{k}: {v}"
            for k, v in built.errors.items()
            if k.startswith(("subject_", "body_", "template", "lists"))
        )
        why = problems or _("fill in the source language")
        return f"<p>{htmllib.escape(_('Nothing to show yet: %(why)s', why=why))}</p>"
    campaign = built.campaign
    if form.trigger in ("before", "after") and form.event in schedules.events:
        from dataclasses import replace

        campaign = replace(campaign, trigger=replace(campaign.trigger, event=form.event))
    prepared = render_campaign(site, campaign, schedules.events, language, now)
    return prepared.personalise(prepared.html, sample_recipient(language))


def send_test(
    site: Site, campaign_id: str, language: str, to: str, now: datetime, _: Translate = _english
) -> str:
    """A test copy of the latest saved revision in `language`: of its stored occurrence when it is
    scheduled (tracked links, as subscribers get it), else rendered as it stands (untracked)."""
    from sqlalchemy import select

    from newsletter.store.tables import occurrences
    from newsletter.web.admin import stages

    with site.store.read() as conn:
        stored_occurrence = conn.execute(
            select(occurrences.c.id).where(
                occurrences.c.campaign == campaign_id, occurrences.c.status == "scheduled"
            )
        ).first()
    if stored_occurrence is not None:
        return str(stages.send_test(site, campaign_id, language, to, now))
    revision = stored.latest(site.store, campaign_id)
    if revision is None:
        raise InputError(
            _("campaign %(campaign)s is not saved yet: save it as a draft first", campaign=repr(campaign_id))
        )
    schedules = parse_schedules(site)
    campaign = stored.to_campaign(site, revision, schedules.events) if revision.entry.get("trigger") else None
    if campaign is None:
        raise InputError(
            _(
                "campaign %(campaign)s cannot be rendered: open it and fix the fields shown",
                campaign=repr(campaign_id),
            )
        )
    from dataclasses import replace

    prepared = render_campaign(site, campaign, schedules.events, language, now)
    prepared = replace(prepared, subject=f"[TEST] {prepared.subject}")
    return send_single(site, prepared, Recipient(0, to, "", language))
