"""schedules.yaml: the example parses; every kind of bad input is reported at file:line:column."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.schedule.check import check_site
from newsletter.schedule.config import ScheduleError, load_schedules
from newsletter.site import Site
from tests.support.schedule import write_schedules

GOOD_EVENT = """\
events:
  - id: webinar
    kind: webinar
    title: {en: A webinar}
    start: 2030-04-21T14:00
    timezone: Europe/London
    sessions:
      - {id: en, language: en, start: 2030-04-21T14:00, timezone: Europe/London}
      - {id: ru, language: ru, start: 2030-04-22T12:00, timezone: Europe/Moscow}
"""


def campaign(**fields: str) -> str:
    base = {
        "id": "reminder",
        "template": "event_reminder",
        "audience": "{lists: [members]}",
        "trigger": "{before: 1d, event: webinar, per_session: true}",
    }
    base.update(fields)
    return "  - " + "\n    ".join(f"{k}: {v}" for k, v in base.items()) + "\n"


def errors_of(site: Site, text: str) -> list[str]:
    write_schedules(site, text)
    with pytest.raises(ScheduleError) as info:
        load_schedules(site)
    return [str(e) for e in info.value.errors]


def located(error: str) -> tuple[int, int]:
    match = re.search(r"schedules\.yaml:(\d+):(\d+): ", error)
    assert match, f"no file:line:column in {error!r}"
    return int(match.group(1)), int(match.group(2))


def test_example_calendar_parses(plain_site: Site) -> None:
    schedules = load_schedules(plain_site)
    assert set(schedules.events) == {"webinar-april", "webinar-may", "declaration-deadline", "hlm-2021"}
    hlm = schedules.events["hlm-2021"]
    assert hlm.start == datetime(2021, 6, 8, 14, 0, tzinfo=UTC)  # 10:00 in New York (EDT)
    april = schedules.events["webinar-april"]
    assert {s.language for s in april.sessions} == {"en", "fr", "es", "ru", "pt"}
    ru = april.session("ru")
    assert ru is not None and ru.start == datetime(2021, 4, 22, 9, 0, tzinfo=UTC)  # 12:00 Moscow
    assert ru.join_url and ru.registration_url
    digest = schedules.campaigns["weekly-digest"]
    assert (
        digest.trigger.kind == "every" and digest.trigger.only_if_new_items and digest.trigger.max_items == 10
    )
    eeca = schedules.campaigns["webinar-april-eeca"].audience
    assert eeca.languages == ("ru",) and eeca.regions == ("EECA",)
    assert schedules.campaigns["signon-1d"].template == "call_to_action"
    assert schedules.campaigns["webinar-april-1h"].trigger.offset == timedelta(hours=1)


def test_example_site_checks_clean(plain_site: Site) -> None:
    report = check_site(plain_site, now=datetime(2021, 4, 1, tzinfo=UTC))
    assert report.errors == []


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        (GOOD_EVENT + "campaigns:\n" + campaign(template="nosuch"), 12, 5, "unknown template 'nosuch'"),
        (
            GOOD_EVENT + "campaigns:\n" + campaign(audience="{lists: [nobody]}"),
            13,
            16,
            "unknown list 'nobody'",
        ),
        (
            GOOD_EVENT + "campaigns:\n" + campaign(trigger="{before: 1d, event: gala}"),
            14,
            27,
            "unknown event 'gala'; events: webinar",
        ),
        (GOOD_EVENT + "campaigns:\n" + campaign(languages="[en, xx]"), 15, 5, "unknown language 'xx'"),
        (GOOD_EVENT.replace("Europe/Moscow", "Europe/Atlantis"), 9, 57, "unknown timezone 'Europe/Atlantis'"),
        (GOOD_EVENT.replace("start: 2030-04-22T12:00, ", ""), 9, 9, "session 'ru' has no time"),
        (GOOD_EVENT.replace("start: 2030-04-22T12:00", "start: 2030-04-22"), 9, 32, "has a date but no time"),
        (
            GOOD_EVENT + "campaigns:\n" + campaign() + campaign(),
            15,
            5,
            "duplicate id 'reminder': already used by the campaign at",
        ),
        (GOOD_EVENT + "campaigns:\n" + campaign(id="webinar"), 11, 5, "duplicate id 'webinar'"),
        (
            GOOD_EVENT.replace("id: ru, language: ru", "id: en, language: ru"),
            7,
            5,
            "duplicate session id 'en'",
        ),
        (
            GOOD_EVENT + "campaigns:\n" + campaign(trigger="{before: 1 day, event: webinar}"),
            14,
            15,
            "duration",
        ),
        (
            GOOD_EVENT + "campaigns:\n" + campaign(trigger="{every: funday 09:00 UTC}"),
            14,
            15,
            "not a weekday",
        ),
        (GOOD_EVENT + "campaigns:\n" + campaign(colour="red"), 15, 5, "unknown field 'colour'"),
        (GOOD_EVENT + "campaigns: [\n", 11, 1, "invalid YAML"),
    ],
)
def test_bad_input_is_located(plain_site: Site, text: str, line: int, col: int, fragment: str) -> None:
    errors = errors_of(plain_site, text)
    matching = [e for e in errors if fragment in e]
    assert matching, errors
    assert located(matching[0]) == (line, col), matching[0]


def test_all_errors_are_collected(plain_site: Site) -> None:
    text = (
        GOOD_EVENT.replace("Europe/London\n    sessions", "Mars/Olympus\n    sessions")
        + "campaigns:\n"
        + campaign(template="nosuch")
        + campaign(id="other", audience="{lists: [nobody]}")
    )
    errors = errors_of(plain_site, text)
    assert any("Mars/Olympus" in e for e in errors)
    assert any("nosuch" in e for e in errors)
    assert any("nobody" in e for e in errors)
    # The invalid event is reported once, not again by every campaign that refers to it.
    assert not any("unknown event" in e for e in errors)


def test_before_longer_than_time_to_event(plain_site: Site) -> None:
    now = datetime(2030, 4, 20, 12, 0, tzinfo=UTC)  # the en session is a day and two hours away
    write_schedules(
        plain_site,
        GOOD_EVENT + "campaigns:\n" + campaign(trigger="{before: 14d, event: webinar, per_session: true}"),
    )
    report = check_site(plain_site, now=now)
    assert len(report.errors) == 2  # both sessions
    assert located(report.errors[0]) == (11, 5)
    assert "before: 14d is longer than the time to session en of webinar" in report.errors[0]
    # Two weeks earlier the same file is fine.
    assert check_site(plain_site, now=now - timedelta(days=14)).errors == []


def test_check_command_reports_schedule_errors(plain_site: Site) -> None:
    write_schedules(plain_site, GOOD_EVENT + "campaigns:\n" + campaign(template="nosuch"))
    env = {"NEWSLETTER_DATABASE_URL": plain_site.settings["database_url"]}
    result = CliRunner().invoke(app, ["check", "--site", str(plain_site.root), "--json"], env=env)
    assert result.exit_code == 1, result.output
    stages = {s["stage"]: s for s in json.loads(result.stdout)["stages"]}
    assert any("unknown template 'nosuch'" in e for e in stages["schedules"]["errors"])


def test_plan_command_refuses_an_invalid_file(plain_site: Site) -> None:
    write_schedules(plain_site, GOOD_EVENT.replace("Europe/Moscow", "Moscow"))
    env = {"NEWSLETTER_DATABASE_URL": plain_site.settings["database_url"]}
    result = CliRunner().invoke(app, ["plan", "--site", str(plain_site.root)], env=env)
    assert result.exit_code == 2
    assert "schedules.yaml:9:57: timezone: unknown timezone 'Moscow'" in result.output
