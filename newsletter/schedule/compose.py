"""The composer's core: a submitted form -> a schedules.yaml entry and texts, checked field by field.

Pure apart from the site's files it checks references against: the dashboard handler parses the
request into a `Form`, calls `build`, and saves only when there is no error (`stored.save`), so a
bad field is reported on the field and nothing is half saved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from newsletter.audience.regions import REGIONS
from newsletter.campaign_content import text_hash
from newsletter.campaigns import Campaign, Event, Schedules
from newsletter.render.markdown import render_body
from newsletter.schedule.config import ID, parse_entry, site_lists, site_templates
from newsletter.schedule.stored import Revision
from newsletter.schedule.times import parse_duration, parse_hhmm, parse_local, zone
from newsletter.site import Site

TEMPLATES = ("message", "call_to_action", "event_reminder")
TRIGGERS = ("at", "before", "after")


@dataclass
class Form:
    """What the composer posts, as text (a checkbox is present or not)."""

    id: str = ""
    template: str = "message"
    lists: list[str] = field(default_factory=list)
    audience_languages: list[str] = field(default_factory=list)
    countries: str = ""
    regions: list[str] = field(default_factory=list)
    attributes: str = ""  # "network=EHRA, role=lawyer"
    languages: list[str] = field(default_factory=list)  # the languages the campaign is written in
    source: str = "en"
    trigger: str = "at"
    at: str = ""
    timezone: str = "UTC"
    event: str = ""
    offset: str = ""
    per_session: bool = False
    local_time: str = ""
    quiet_from: str = ""
    quiet_to: str = ""
    missing_translation: str = "fallback"
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # lang -> subject, preheader, body
    stamped: set[str] = field(default_factory=set)  # translations marked up to date with the source

    @classmethod
    def from_fields(cls, get: Any, getlist: Any, languages: list[str]) -> Form:
        """From a request's form (`get(name)`, `getlist(name)`)."""

        def text(name: str, default: str = "") -> str:
            return str(get(name) or default).strip()

        texts = {}
        for lang in languages:
            subject, preheader = text(f"subject_{lang}"), text(f"preheader_{lang}")
            body = str(get(f"body_{lang}") or "").replace("\r\n", "\n").strip("\n")
            if subject or preheader or body.strip():
                texts[lang] = {"subject": subject, "preheader": preheader, "body": body}
        return cls(
            id=text("id"),
            template=text("template", "message"),
            lists=[str(v) for v in getlist("lists")],
            audience_languages=[str(v) for v in getlist("audience_languages")],
            countries=text("countries"),
            regions=[str(v) for v in getlist("regions")],
            attributes=text("attributes"),
            languages=[str(v) for v in getlist("languages")] or list(languages),
            source=text("source", languages[0] if languages else "en"),
            trigger=text("trigger", "at"),
            at=text("at"),
            timezone=text("timezone", "UTC"),
            event=text("event"),
            offset=text("offset"),
            per_session=bool(get("per_session")),
            local_time=text("local_time"),
            quiet_from=text("quiet_from"),
            quiet_to=text("quiet_to"),
            missing_translation=text("missing_translation", "fallback"),
            texts=texts,
            stamped={lang for lang in languages if get(f"stamp_{lang}")},
        )

    @classmethod
    def from_revision(cls, revision: Revision, source: str) -> Form:
        entry = revision.entry
        audience = entry.get("audience", {})
        trigger = entry.get("trigger", {})
        kind = next((k for k in TRIGGERS if k in trigger), "at")
        quiet = entry.get("quiet_hours") or ["", ""]
        return cls(
            id=revision.campaign,
            template=str(entry.get("template", "message")),
            lists=list(audience.get("lists", [])),
            audience_languages=list(audience.get("languages", [])),
            countries=", ".join(audience.get("countries", [])),
            regions=list(audience.get("regions", [])),
            attributes=", ".join(f"{k}={v}" for k, v in audience.get("attributes", {}).items()),
            languages=list(entry.get("languages", [])),
            source=source,
            trigger=kind,
            at=str(trigger.get("at", "")),
            timezone=str(trigger.get("timezone", "UTC")),
            event=str(trigger.get("event", "")),
            offset=str(trigger.get(kind, "")) if kind != "at" else "",
            per_session=bool(trigger.get("per_session", False)),
            local_time=str(entry.get("local_time", "")),
            quiet_from=str(quiet[0]),
            quiet_to=str(quiet[1]),
            missing_translation=str(entry.get("missing_translation", "fallback")),
            texts={
                lang: {k: str(t.get(k, "")) for k in ("subject", "preheader", "body")}
                for lang, t in revision.texts.items()
            },
        )


@dataclass
class Built:
    entry: dict[str, Any]
    texts: dict[str, dict[str, str]]
    errors: dict[str, str]  # field name -> message ("_form" for what belongs to no one field)
    campaign: Campaign | None = None


def build(
    site: Site,
    form: Form,
    *,
    schedules: Schedules,
    previous: Revision | None,
    creating: bool,
    taken: set[str],
    now: datetime,
) -> Built:
    """The entry and texts of `form`, with an error per bad field. `taken`: ids composed already."""
    errors: dict[str, str] = {}
    languages = list(site.languages)

    if not form.id:
        errors["id"] = "give the campaign an id, e.g. zero-draft-followup"
    elif not ID.match(form.id):
        errors["id"] = f"id {form.id!r}: use lowercase letters, digits, '-', '_' or '.'"
    elif creating and (form.id in schedules.campaigns or form.id in schedules.events or form.id in taken):
        errors["id"] = f"id {form.id!r} is already used by another campaign or event; choose another"
    if form.template not in TEMPLATES or form.template not in site_templates(site):
        errors["template"] = f"template {form.template!r}: one of {', '.join(TEMPLATES)}"

    known_lists = site_lists(site)
    if not form.lists:
        errors["lists"] = f"choose at least one list ({', '.join(known_lists)})"
    for slug in form.lists:
        if slug not in known_lists:
            errors["lists"] = f"unknown list {slug!r}; lists: {', '.join(known_lists)}"
    for lang in form.audience_languages:
        if lang not in languages:
            errors["audience_languages"] = (
                f"unknown language {lang!r}; this site offers {', '.join(languages)}"
            )
    countries = [c.strip().upper() for c in re.split(r"[,\s]+", form.countries) if c.strip()]
    for country in countries:
        if not re.fullmatch(r"[A-Z]{2}", country):
            errors["countries"] = (
                f"country {country!r}: use ISO 3166 alpha-2 codes such as UA, separated by commas"
            )
    for region in form.regions:
        if region.upper() not in REGIONS:
            errors["regions"] = f"unknown region {region!r}; regions: {', '.join(REGIONS)}"
    attributes: dict[str, str] = {}
    for pair in (p.strip() for p in form.attributes.split(",") if p.strip()):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            errors["attributes"] = f"attribute {pair!r}: write name=value, separated by commas"
        else:
            attributes[key.strip()] = value.strip()

    written = [lang for lang in form.languages if lang in languages] or languages
    if form.source not in written:
        errors["source"] = f"the source language {form.source!r} must be one of the campaign's languages"

    trigger: dict[str, Any] = {}
    if form.trigger == "at":
        trigger = _at_trigger(form, now, errors)
    elif form.trigger in ("before", "after"):
        trigger = _event_trigger(form, schedules.events, now, errors)
    else:
        errors["trigger"] = f"trigger {form.trigger!r}: one of {', '.join(TRIGGERS)}"

    entry: dict[str, Any] = {
        "template": form.template,
        "audience": {
            "lists": form.lists,
            **({"languages": form.audience_languages} if form.audience_languages else {}),
            **({"countries": countries} if countries else {}),
            **({"regions": [r.upper() for r in form.regions]} if form.regions else {}),
            **({"attributes": attributes} if attributes else {}),
        },
        "languages": written,
        "trigger": trigger,
        "missing_translation": form.missing_translation
        if form.missing_translation == "block"
        else "fallback",
    }
    if form.local_time:
        try:
            parse_hhmm(form.local_time)
            entry["local_time"] = form.local_time
        except ValueError as exc:
            errors["local_time"] = f"local time: {exc}"
    if form.quiet_from or form.quiet_to:
        try:
            parse_hhmm(form.quiet_from), parse_hhmm(form.quiet_to)
            entry["quiet_hours"] = [form.quiet_from, form.quiet_to]
        except ValueError as exc:
            errors["quiet_hours"] = f"quiet hours: give both times, e.g. 22:00 and 07:00 ({exc})"

    texts = _texts(form, written, previous, errors)
    campaign = None
    if not errors:
        from newsletter.schedule.stored import Revision as Rev

        probe = Rev(form.id, 0, "draft", entry, texts, now, "")
        campaign, problems = parse_entry(
            site,
            {**entry, "id": form.id, "content": form.id},
            schedules.events,
            probe.content(form.source),
            f"campaign {form.id}",
        )
        if problems:
            errors["_form"] = "; ".join(p.message for p in problems)
    return Built(entry=entry, texts=texts, errors=errors, campaign=campaign)


def _at_trigger(form: Form, now: datetime, errors: dict[str, str]) -> dict[str, Any]:
    try:
        zone(form.timezone)
    except ValueError as exc:
        errors["timezone"] = str(exc)
        return {}
    if not form.at:
        errors["at"] = "give the date and time it goes out, e.g. 2021-04-28T09:00"
        return {}
    try:
        when = parse_local(form.at.replace(" ", "T"), form.timezone)
    except ValueError as exc:
        errors["at"] = f"date and time: {exc}"
        return {}
    if when <= now:
        errors["at"] = (
            f"{form.at} {form.timezone} is in the past (it is now "
            f"{now.astimezone(when.tzinfo):%Y-%m-%d %H:%M} there): choose a later time"
        )
    return {"at": form.at.replace(" ", "T")[:16], "timezone": form.timezone}


def _event_trigger(
    form: Form, events: Mapping[str, Event], now: datetime, errors: dict[str, str]
) -> dict[str, Any]:
    event = events.get(form.event)
    if event is None:
        errors["event"] = f"unknown event {form.event!r}; events: {', '.join(events) or 'none'}"
        return {}
    try:
        offset = parse_duration(form.offset)
    except ValueError as exc:
        errors["offset"] = f"{form.trigger}: {exc}"
        return {}
    if form.per_session and not event.sessions:
        errors["per_session"] = f"event {event.id!r} has no sessions"
    starts = [s.start for s in event.sessions] if form.per_session and event.sessions else [event.start]
    due = [s - offset if form.trigger == "before" else s + offset for s in starts]
    if max(due) <= now:
        errors["offset"] = f"{form.offset} {form.trigger} {event.id} is in the past: nothing would go out"
    trigger: dict[str, Any] = {form.trigger: form.offset, "event": event.id}
    if form.per_session:
        trigger["per_session"] = True
    return trigger


def _texts(
    form: Form, written: list[str], previous: Revision | None, errors: dict[str, str]
) -> dict[str, dict[str, str]]:
    """The texts to store; each translation keeps the source hash it was written from (see module doc)."""
    source = form.texts.get(form.source, {})
    if not source.get("subject"):
        errors[f"subject_{form.source}"] = f"the subject in {form.source} (the source language) is empty"
    if render_body(source.get("body", "")).empty:
        errors[f"body_{form.source}"] = f"the {form.source} body renders to nothing: write the message"
    current = text_hash(source.get("subject", ""), source.get("preheader", ""), source.get("body", ""))
    out: dict[str, dict[str, str]] = {}
    for lang, text in form.texts.items():
        if lang not in written:
            continue
        if lang != form.source:
            if not text.get("subject"):
                errors[f"subject_{lang}"] = (
                    f"the {lang} text has no subject: write one, or clear the {lang} tab"
                )
            if render_body(text.get("body", "")).empty:
                errors[f"body_{lang}"] = (
                    f"the {lang} body renders to nothing: write it, or clear the {lang} tab"
                )
        stored = {k: text.get(k, "") for k in ("subject", "preheader", "body")}
        if lang != form.source:
            before = previous.texts.get(lang) if previous else None
            unchanged = before is not None and all(before.get(k, "") == stored[k] for k in stored)
            stale = unchanged and lang not in form.stamped and before is not None
            stored["source"] = form.source
            stored["source_hash"] = str(before.get("source_hash", "")) if stale and before else current
        out[lang] = stored
    return out
