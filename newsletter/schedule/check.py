"""`newsletter check` for schedules.yaml: the schema, the references, and triggers that cannot be met."""

from __future__ import annotations

from datetime import datetime

from newsletter.campaigns import Schedules, format_duration
from newsletter.findings import CheckReport
from newsletter.schedule.config import ScheduleError, load_schedules
from newsletter.site import Site
from newsletter.store import now_utc


def timing_errors(schedules: Schedules, now: datetime) -> list[str]:
    """`before:` reminders longer than the time left to their (future) event: due already in the past."""
    errors = []
    for campaign in schedules.campaigns.values():
        trigger = campaign.trigger
        event = schedules.events.get(trigger.event or "")
        if trigger.kind != "before" or event is None or event.cancelled or trigger.offset is None:
            continue
        for target in event.sessions if trigger.per_session else (event,):
            if target.start <= now or target.start - trigger.offset >= now:
                continue
            label = f"session {target.id} of {event.id}" if trigger.per_session else f"event {event.id}"
            errors.append(
                f"{campaign.where}: campaign {campaign.id}: before: {format_duration(trigger.offset)} "
                f"is longer than the time to {label} (starts {target.start:%Y-%m-%d %H:%M} "
                f"{target.timezone}, in {format_duration(target.start - now)}); it could never go out on "
                f"time: shorten it"
            )
    return errors


def warnings_for(schedules: Schedules) -> list[str]:
    out = []
    for campaign in schedules.campaigns.values():
        event = schedules.events.get(campaign.trigger.event or "")
        if event and campaign.trigger.per_session:
            for session in event.sessions:
                if session.language not in campaign.languages:
                    out.append(
                        f"{campaign.where}: campaign {campaign.id} is not written in {session.language}, "
                        f"the language of session {session.id} of {event.id}: its subscribers get a fallback"
                    )
    return out


def content_problems(schedules: Schedules) -> tuple[list[str], list[str]]:
    """(errors, warnings) of composed campaigns: empty bodies; missing or outdated translations."""
    from newsletter.render.markdown import render_body

    errors, warnings = [], []
    for campaign in schedules.campaigns.values():
        content = campaign.content
        if content is None:
            continue
        for text in content.texts.values():
            if render_body(text.body).empty:
                errors.append(f"{text.where}: the body renders to nothing: write the message below the '---'")
        for language, status in content.statuses(campaign.languages).items():
            if status not in ("missing", "outdated"):
                continue
            what = (
                f"has no {language} text (content/{content.name}/{language}.md)"
                if status == "missing"
                else f"{language} text is outdated: {content.texts[language].where} was translated from "
                f"another version of {content.source}.md (newsletter content stamp {campaign.id} "
                f"--lang {language} once it is updated)"
            )
            effect = (
                f"it will not be sent in {language} (missing_translation: block)"
                if campaign.missing_translation == "block"
                else "its readers get a fallback"
                if status == "missing"
                else "it is sent as it is"
            )
            warnings.append(f"{campaign.where}: campaign {campaign.id} {what}; {effect}")
    return errors, warnings


def translation_table(schedules: Schedules, languages: list[str]) -> tuple[str, list[str], list[list[str]]]:
    rows = [
        [c.id, *(c.content.status(lang) if lang in c.languages else "-" for lang in languages)]
        for c in schedules.campaigns.values()
        if c.content is not None
    ]
    return ("composed campaigns: text per language", ["campaign", *languages], rows)


def check_site(site: Site, now: datetime | None = None) -> CheckReport:
    """Every problem in schedules.yaml, each at file:line:column."""
    report = CheckReport("schedules")
    try:
        schedules = load_schedules(site)
    except ScheduleError as exc:
        report.errors.extend(str(e) for e in exc.errors)
        return report
    report.errors.extend(timing_errors(schedules, now or now_utc()))
    report.warnings.extend(warnings_for(schedules))
    errors, warnings = content_problems(schedules)
    report.errors.extend(errors)
    report.warnings.extend(warnings)
    if any(c.content is not None for c in schedules.campaigns.values()):
        report.tables.append(translation_table(schedules, list(site.languages)))
    report.tables.append(
        (
            "campaigns",
            ["id", "template", "trigger", "languages", "lists"],
            [
                [c.id, c.template, c.trigger.describe(), ", ".join(c.languages), ", ".join(c.audience.lists)]
                for c in schedules.campaigns.values()
            ],
        )
    )
    return report
