"""The plan: spring 2021 on the example site, languages and audiences, local hours, DST transitions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.schedule.load import load_schedules
from newsletter.schedule.plan import plan
from newsletter.schedule.sync import plan_for_site
from newsletter.schedule.times import recipient_time
from newsletter.site import Site
from tests.support.schedule import add_subscribers, write_schedules

APRIL_1 = datetime(2021, 4, 1, tzinfo=UTC)


def by_key(sends: list) -> dict:
    return {s.key: s for s in sends}


def test_spring_2021_webinar_reminders_at_session_local_times(plain_site: Site) -> None:
    sends = by_key(plan(load_schedules(plain_site), audience_sizes={}, now=APRIL_1, days=75))
    # 14 days before each session, in the session's own zone and language.
    ru = sends["webinar-april-14d/webinar-april/ru"]
    assert ru.local.isoformat() == "2021-04-08T12:00:00+03:00" and ru.languages == ("ru",)
    es = sends["webinar-april-14d/webinar-april/es"]
    assert es.local.isoformat() == "2021-04-07T10:00:00-05:00" and es.timezone == "America/Mexico_City"
    en_1h = sends["webinar-april-1h/webinar-april/en"]
    assert en_1h.due == datetime(2021, 4, 21, 12, 0, tzinfo=UTC)  # 13:00 BST, an hour before 14:00
    assert en_1h.not_after == datetime(2021, 4, 21, 13, 0, tzinfo=UTC)
    assert en_1h.trigger == "1h before each session of webinar-april"
    # The HLM: a week before, 10:00 in New York.
    assert sends["hlm-7d/hlm-2021"].local.isoformat() == "2021-06-01T10:00:00-04:00"
    # Sign-on calls before the deadline (23:59 New York, 31 May), moved out of the quiet night hours.
    signon = sends["signon-14d/declaration-deadline"]
    assert signon.template == "call_to_action"
    assert signon.reference == datetime(2021, 5, 18, 3, 59, tzinfo=UTC) and signon.due.hour == 7
    # The weekly digest: Mondays 09:00 London, which is 08:00 UTC in summer time.
    digest = sends["weekly-digest/2021-04-05"]
    assert digest.due == datetime(2021, 4, 5, 8, 0, tzinfo=UTC) and digest.only_if_new_items
    every_key = [s for s in sends if s.startswith("webinar-april-")]
    # 14d, the register nudge, 1d and 1h for five sessions, plus the EECA invitation
    assert len(every_key) == 4 * 5 + 1
    # Ordered by time; nothing before `now`, nothing after the window.
    dues = [s.due for s in sends.values()]
    assert min(dues) >= APRIL_1 and max(dues) < APRIL_1 + timedelta(days=75)


def test_plan_counts_audiences_per_session_language(sched_site: Site) -> None:
    add_subscribers(
        sched_site,
        [
            {"email": "a@example.org", "language": "en"},
            {"email": "b@example.org", "language": "ru", "timezone": "Asia/Almaty", "country": "KZ"},
            {"email": "c@example.org", "language": "ru", "timezone": "Europe/Kyiv", "country": "UA"},
            {"email": "d@example.org", "language": "pt-BR", "timezone": "America/Sao_Paulo"},
            {"email": "e@example.org", "language": "fr", "country": "SN"},
        ],
    )
    add_subscribers(
        sched_site, [{"email": "f@example.org", "language": "ru", "country": "RU"}], "key-populations"
    )
    sends = by_key(plan_for_site(sched_site, APRIL_1, days=30))
    assert sends["webinar-april-14d/webinar-april/ru"].audience == 3
    assert sends["webinar-april-14d/webinar-april/pt"].audience == 1  # pt-BR reads the pt session
    assert sends["webinar-april-14d/webinar-april/en"].audience == 1
    assert sends["webinar-april-register/webinar-april/ru"].audience == 3  # nobody registered yet
    assert sends["webinar-april-1d/webinar-april/ru"].audience == 0  # registrants only
    # Russian speakers of EECA on the two advocacy lists only.
    assert sends["webinar-april-eeca/webinar-april"].audience == 1
    digest = sends["weekly-digest/2021-04-05"]
    assert digest.audience == 5 and digest.audience_by_language == {"en": 1, "ru": 2, "pt": 1, "fr": 1}
    assert digest.new_items == 0 and "only if new items" in digest.reason


def test_plan_command_json(sched_site: Site) -> None:
    env = {"NEWSLETTER_DATABASE_URL": sched_site.settings["database_url"]}
    args = ["plan", "--site", str(sched_site.root), "--now", "2021-04-01T00:00:00Z", "--days", "75", "--json"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    sends = json.loads(result.stdout)["sends"]
    keys = [s["key"] for s in sends]
    assert "hlm-1d/hlm-2021" in keys and "signon-1d/declaration-deadline" in keys
    ru = next(s for s in sends if s["key"] == "webinar-april-1h/webinar-april/ru")
    assert ru["due_local"] == "2021-04-22T11:00:00+03:00" and ru["languages"] == ["ru"]
    assert ru["due_utc"] == "2021-04-22T08:00:00+00:00" and ru["status"] == "planned"


def test_local_time_spreads_over_subscriber_timezones(plain_site: Site) -> None:
    schedules = load_schedules(plain_site)
    zones = {"hlm-1d": {"Asia/Bangkok": 3, "America/Los_Angeles": 2, "Europe/Moscow": 1}}
    sends = by_key(plan(schedules, audience_sizes={}, audience_timezones=zones, now=APRIL_1, days=75))
    hlm = sends["hlm-1d/hlm-2021"]
    # 09:00 on 7 June in Bangkok is the first, 09:00 in Los Angeles the last.
    assert hlm.due == datetime(2021, 6, 7, 2, 0, tzinfo=UTC)
    assert hlm.last_at == datetime(2021, 6, 7, 16, 0, tzinfo=UTC)


def test_recipient_time_never_after_the_event_starts() -> None:
    start = datetime(2021, 4, 21, 13, 0, tzinfo=UTC)
    due = start - timedelta(hours=1)
    # 09:00 local on the day would be fine in Bangkok (before), too late in Honolulu: then the trigger time.
    assert recipient_time(due, "Asia/Bangkok", local_time=time(9), not_after=start) == datetime(
        2021, 4, 21, 2, 0, tzinfo=UTC
    )
    assert recipient_time(due, "Pacific/Honolulu", local_time=time(9), not_after=start) == due
    # Quiet hours 22:00-07:00 in Tokyo move a 12:00 UTC (21:00 JST) send? No: 21:00 is outside.
    assert recipient_time(due, "Asia/Tokyo", quiet_hours=(time(22), time(7))) == due
    assert recipient_time(due, "Pacific/Auckland", quiet_hours=(time(22), time(7))) == datetime(
        2021, 4, 21, 19, 0, tzinfo=UTC
    )  # midnight in Auckland -> 07:00 NZST


DIGESTS = """\
campaigns:
  - id: monday
    template: digest
    audience: {lists: [members]}
    trigger: {every: monday 09:00 Europe/London}
  - id: night
    template: digest
    audience: {lists: [members]}
    trigger: {every: sunday 01:30 Europe/London}
"""


def _instances(site: Site, start: datetime, days: int, campaign: str) -> list:
    write_schedules(site, DIGESTS)
    sends = plan(load_schedules(site), audience_sizes={}, now=start, days=days)
    return [s for s in sends if s.campaign == campaign]


def test_dst_spring_forward_no_double_no_skip(plain_site: Site) -> None:
    mondays = _instances(plain_site, datetime(2021, 3, 20, tzinfo=UTC), 21, "monday")
    assert [s.local.strftime("%Y-%m-%d %H:%M") for s in mondays] == [
        "2021-03-22 09:00",
        "2021-03-29 09:00",
        "2021-04-05 09:00",
    ]
    assert [s.due.hour for s in mondays] == [9, 8, 8]  # GMT, then BST
    # 01:30 on 28 March does not exist in London: sent once, at 02:30 BST (01:30 UTC).
    nights = _instances(plain_site, datetime(2021, 3, 20, tzinfo=UTC), 21, "night")
    assert [s.key for s in nights] == ["night/2021-03-21", "night/2021-03-28", "night/2021-04-04"]
    assert nights[1].due == datetime(2021, 3, 28, 1, 30, tzinfo=UTC)
    assert nights[2].due == datetime(2021, 4, 4, 0, 30, tzinfo=UTC)


def test_dst_fall_back_no_double_no_skip(plain_site: Site) -> None:
    mondays = _instances(plain_site, datetime(2021, 10, 20, tzinfo=UTC), 21, "monday")
    assert [s.due for s in mondays] == [
        datetime(2021, 10, 25, 8, 0, tzinfo=UTC),
        datetime(2021, 11, 1, 9, 0, tzinfo=UTC),
        datetime(2021, 11, 8, 9, 0, tzinfo=UTC),
    ]
    # 01:30 on 31 October happens twice in London: sent once, the first time (BST).
    nights = _instances(plain_site, datetime(2021, 10, 20, tzinfo=UTC), 21, "night")
    assert [s.key for s in nights] == ["night/2021-10-24", "night/2021-10-31", "night/2021-11-07"]
    assert nights[1].due == datetime(2021, 10, 31, 0, 30, tzinfo=UTC)
    assert len({s.due for s in nights}) == 3


def test_plan_is_pure_and_windowed(plain_site: Site) -> None:
    schedules = load_schedules(plain_site)
    first = plan(schedules, audience_sizes={}, now=APRIL_1, days=10)
    assert first == plan(schedules, audience_sizes={}, now=APRIL_1, days=10)
    assert all(APRIL_1 <= s.due < APRIL_1 + timedelta(days=10) for s in first)
    assert {s.due.date() for s in first} >= {date(2021, 4, 5), date(2021, 4, 7)}
