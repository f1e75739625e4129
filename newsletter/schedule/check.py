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
