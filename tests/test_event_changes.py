"""A session moves after reminders went out: the plan says so, the calendar entry's SEQUENCE rises, and
an `on_change` campaign tells exactly those who were reminded of the old time."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import httpx
import icalendar
from sqlalchemy import select

from newsletter.schedule.config import load_schedules
from newsletter.schedule.occurrences import claim
from newsletter.schedule.sync import plan_for_site, reconcile
from newsletter.send.engine import send_occurrence
from newsletter.store.tables import calendar_entries, occurrences
from tests.support.schedule import add_subscribers

REMINDED = datetime(2021, 4, 7, 13, 0, tzinfo=UTC)  # the 14d reminder of the English session
MOVED = datetime(2021, 4, 9, 10, 0, tzinfo=UTC)  # the session moves an hour later


def _fire(site, key: str, now: datetime) -> int:
    with site.store.read() as conn:
        occurrence = conn.scalar(select(occurrences.c.id).where(occurrences.c.key == key))
    row, why_not = claim(site.store, occurrence, now)
    assert row is not None, why_not
    return send_occurrence(site, occurrence, now, load_schedules(site)).sent


def _move_english_session(site) -> None:
    text = site.schedules_file.read_text(encoding="utf-8")
    old = "start: 2021-04-21T14:00\n        end: 2021-04-21T15:30\n        timezone: Europe/London"
    assert old in text
    new = "start: 2021-04-21T15:00\n        end: 2021-04-21T16:30\n        timezone: Europe/London"
    site.schedules_file.write_text(text.replace(old, new), encoding="utf-8")


def test_a_move_after_reminders_is_planned_shown_and_sent_to_those_reminded(site, backend, live_server):
    add_subscribers(site, [{"email": "reminded@example.org", "language": "en", "timezone": "Europe/London"}])
    reconcile(site, REMINDED)
    assert _fire(site, "webinar-april-14d/webinar-april/en", REMINDED) == 1
    add_subscribers(site, [{"email": "joined-later@example.org", "language": "en"}])

    _move_english_session(site)
    reconcile(site, MOVED)
    planned = {s.key: s for s in plan_for_site(site, MOVED, days=14)}
    notice = planned["webinar-april-moved/webinar-april/en/moved-20210421T1400Z"]
    assert notice.due == MOVED and notice.status == "scheduled"
    assert (
        notice.reason
        == "moved from Wed 21 Apr 14:00 to Wed 21 Apr 15:00 Europe/London after reminders went out"
    )
    assert notice.audience_by_language == {"en": 1}  # only the one reminded
    sent = planned["webinar-april-14d/webinar-april/en"]
    assert (
        sent.status == "sent"
        and "announced 2021-04-21 13:00 UTC, now starts 2021-04-21 14:00 UTC" in sent.reason
    )
    assert not any(k.startswith("webinar-april-moved/webinar-april/fr") for k in planned)  # fr did not move

    assert _fire(site, notice.key, MOVED) == 1
    [path] = [p for p in site.outbox_dir.iterdir() if "New time" in p.read_text(errors="replace")]
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"] == "New time for the April webinar" and "reminded@example.org" in message["To"]
    text = message.get_body(("plain",)).get_content()
    when = next(line for line in text.splitlines() if "When:" in line)
    assert "April 21, 2021, 3:00" in when and "(London)" in when, when  # 15:00 London, the new time
    # A second reconcile plans nothing new: the notice is keyed by the new time.
    reconcile(site, MOVED)
    again = [s for s in plan_for_site(site, MOVED, days=14) if s.campaign == "webinar-april-moved"]
    assert [s.status for s in again] == ["sent"]

    with site.store.read() as conn:
        entry = conn.execute(
            select(calendar_entries).where(
                calendar_entries.c.event_id == "webinar-april", calendar_entries.c.session == "en"
            )
        ).one()
    assert entry.sequence == 1 and entry.changed_at == MOVED
    server = live_server(site)
    answer = httpx.get(server.url + "/ics/webinar-april/en.ics", timeout=10)
    vevent = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")[0]
    assert vevent["sequence"] == 1
    assert vevent.decoded("dtstart").astimezone(UTC) == datetime(2021, 4, 21, 14, tzinfo=UTC)
