"""Calendar files of events and sessions: two parsers, zones across DST, stable UIDs, SEQUENCE, HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import icalendar
import vobject

from newsletter.render import ics
from newsletter.render.assemble import prepare_occurrence
from newsletter.render.calendar import publish
from newsletter.schedule.config import load_schedules
from tests.support.render import add_occurrence

NOW = datetime(2021, 4, 1, 9, tzinfo=UTC)
HOST = "hub.example.org"

# Two sessions on either side of London's spring-forward night (28 March 2021, 01:00 UTC):
# 10:00 wall time is 10:00 UTC on the 27th and 09:00 UTC on the 28th.
DST_EVENT = """
  - id: dst-webinar
    kind: webinar
    title: {en: "Across the clock change", fr: "Au changement d'heure"}
    description: {en: "Two sessions.", fr: "Deux sessions."}
    start: 2021-03-27T10:00
    timezone: Europe/London
    sessions:
      - {id: before, language: en, start: 2021-03-27T10:00, end: 2021-03-27T11:00,
         timezone: Europe/London, join_url: "https://meet.example.org/before"}
      - {id: after, language: fr, start: 2021-03-28T10:00, end: 2021-03-28T11:00,
         timezone: Europe/London, join_url: "https://meet.example.org/after"}
"""


def with_dst_event(site):
    text = site.schedules_file.read_text(encoding="utf-8").replace("events:\n", "events:" + DST_EVENT, 1)
    site.schedules_file.write_text(text, encoding="utf-8")
    return load_schedules(site)


def both_parsers(document: bytes) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """UID -> DTSTART as read by icalendar and by vobject (dateutil's VTIMEZONE reading)."""
    first = {
        str(v["uid"]): v.decoded("dtstart") for v in icalendar.Calendar.from_ical(document).walk("VEVENT")
    }
    second = {v.uid.value: v.dtstart.value for v in vobject.readOne(document.decode()).vevent_list}
    return first, second


def test_every_event_and_session_parses_with_two_parsers(plain_site):
    schedules = load_schedules(plain_site)
    items = ics.entries(list(schedules.events.values()), "fr", plain_site.fallback_chain, HOST)
    assert len(items) == len(schedules.events) + sum(len(e.sessions) for e in schedules.events.values())
    for item in items:
        document = ics.to_ics([(item, 0)], NOW)
        first, second = both_parsers(document)
        assert first[item.uid] == second[item.uid] == item.start
        assert first[item.uid].utcoffset() == item.start.utcoffset()
        vevent = icalendar.Calendar.from_ical(document).walk("VEVENT")[0]
        if item.timezone != "UTC":
            assert vevent["dtstart"].params["TZID"] == item.timezone
            zones = [str(z["tzid"]) for z in icalendar.Calendar.from_ical(document).walk("VTIMEZONE")]
            assert zones == [item.timezone]
        assert vevent["status"] == "CONFIRMED"


def test_titles_and_descriptions_in_the_sessions_language(plain_site):
    event = load_schedules(plain_site).events["webinar-april"]
    french = ics.entry(event, event.session("fr"), "en", plain_site.fallback_chain, HOST)
    assert french.title == event.title["fr"] and french.language == "fr"
    assert "https://hlm2021-hub.example.org/join/april-fr" in french.description
    document = ics.to_ics([(french, 0)], NOW).decode()
    assert "La société civile" in icalendar.Calendar.from_ical(document).walk("VEVENT")[0]["summary"]
    assert vobject.readOne(document).vevent.url.value == "https://hlm2021-hub.example.org/join/april-fr"
    # The event itself, without a session, is in the language asked for.
    assert ics.entry(event, None, "ru", plain_site.fallback_chain, HOST).title == event.title["ru"]


def test_times_match_the_session_in_its_zone_across_dst(plain_site):
    event = with_dst_event(plain_site).events["dst-webinar"]
    items = [ics.entry(event, s, "en", plain_site.fallback_chain, HOST) for s in event.sessions]
    document = ics.to_ics([(i, 0) for i in items], NOW)
    first, second = both_parsers(document)
    london = ZoneInfo("Europe/London")
    for parsed in (first, second):
        before, after = parsed[f"dst-webinar/before@{HOST}"], parsed[f"dst-webinar/after@{HOST}"]
        assert before.astimezone(UTC) == datetime(2021, 3, 27, 10, tzinfo=UTC)
        assert after.astimezone(UTC) == datetime(2021, 3, 28, 9, tzinfo=UTC)
        assert before.astimezone(london).hour == after.astimezone(london).hour == 10
    assert "TZID=Europe/London:20210328T100000" in document.decode()


def test_uid_is_stable_across_runs(plain_site):
    first = [
        i.uid
        for i in ics.entries(
            list(load_schedules(plain_site).events.values()), "en", plain_site.fallback_chain, HOST
        )
    ]
    again = [
        i.uid
        for i in ics.entries(
            list(load_schedules(plain_site).events.values()), "fr", plain_site.fallback_chain, HOST
        )
    ]
    assert first == again
    assert "webinar-april/ru@hub.example.org" in first and len(set(first)) == len(first)


def test_sequence_rises_when_the_session_moves_and_on_cancel(site, backend):
    event = load_schedules(site).events["webinar-april"]
    item = ics.entry(event, event.session("en"), "en", site.fallback_chain, HOST)
    assert publish(site.store, [item], NOW) == [(item, 0)]
    assert publish(site.store, [item], NOW + timedelta(hours=1)) == [(item, 0)]  # unchanged: unchanged
    text = site.schedules_file.read_text(encoding="utf-8")
    site.schedules_file.write_text(
        text.replace(
            "start: 2021-04-21T14:00\n        end: 2021-04-21T15:30",
            "start: 2021-04-21T15:00\n        end: 2021-04-21T16:30",
        ),
        encoding="utf-8",
    )
    moved_event = load_schedules(site).events["webinar-april"]
    moved = ics.entry(moved_event, moved_event.session("en"), "en", site.fallback_chain, HOST)
    assert moved.uid == item.uid and moved.start == item.start + timedelta(hours=1)
    assert publish(site.store, [moved], NOW) == [(moved, 1)]
    assert publish(site.store, [moved], NOW) == [(moved, 1)]
    document = ics.to_ics(publish(site.store, [moved], NOW), NOW)
    assert icalendar.Calendar.from_ical(document).walk("VEVENT")[0]["sequence"] == 1
    cancelled = ics.entry(
        moved_event.__class__(**{**moved_event.__dict__, "cancelled": True}),
        moved_event.session("en"),
        "en",
        site.fallback_chain,
        HOST,
    )
    [(_, sequence)] = publish(site.store, [cancelled], NOW)
    assert sequence == 2
    vevent = icalendar.Calendar.from_ical(ics.to_ics([(cancelled, sequence)], NOW)).walk("VEVENT")[0]
    assert vevent["status"] == "CANCELLED"
    assert (
        vobject.readOne(ics.to_ics([(cancelled, sequence)], NOW).decode()).vevent.status.value == "CANCELLED"
    )


def test_the_reminders_calendar_links_answer_with_text_calendar(render_site, live_server):
    server = live_server(render_site)
    render_site.settings = render_site.settings.replace(base_url=server.url)
    occurrence = add_occurrence(render_site, "webinar-april-1d", event_id="webinar-april", session="fr")
    prepared = prepare_occurrence(render_site, load_schedules(render_site), occurrence, "fr", NOW)
    assert "Ajoutez-le à votre agenda" in prepared.html
    assert "data:" not in prepared.html
    # Our own https URLs (not rewritten to click URLs: they are not external links).
    found = set(re.findall(rf'href="({re.escape(server.url)}/ics/[^"]+)"', prepared.html))
    targets = {t.replace("&amp;", "&"): t for t in found}
    assert len(targets) == 3
    with httpx.Client(timeout=10) as client:
        ics_target = next(t for t in targets if "/ics/webinar-april/fr.ics" in t)
        assert ics_target.startswith(server.url + "/ics/")  # our own URL, never data:
        answer = client.get(ics_target)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/calendar")
        vevent = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")[0]
        assert vevent.decoded("dtstart") == datetime(2021, 4, 21, 11, tzinfo=ZoneInfo("Africa/Abidjan"))
        assert "La société civile" in str(vevent["summary"])
        google = next(t for t in targets if t.startswith(server.url + "/ics/webinar-april/fr/google"))
        redirect = client.get(google)
        assert redirect.status_code == 302
        query = parse_qs(urlsplit(redirect.headers["location"]).query)
        assert urlsplit(redirect.headers["location"]).netloc == "calendar.google.com"
        assert query["dates"] == ["20210421T110000Z/20210421T123000Z"]
        assert query["ctz"] == ["Africa/Abidjan"]
        outlook = next(t for t in targets if t.startswith(server.url + "/ics/webinar-april/fr/outlook"))
        query = parse_qs(urlsplit(client.get(outlook).headers["location"]).query)
        assert query["startdt"] == ["2021-04-21T11:00:00+00:00"]
        assert (
            client.get(server.url + "/ics/webinar-april.ics?lang=ru")
            .headers["content-type"]
            .startswith("text/calendar")
        )
        assert client.get(server.url + "/ics/no-such-event.ics").status_code == 404
        assert client.get(server.url + "/ics/webinar-april/xx.ics").status_code == 404


def test_a_campaign_can_attach_the_calendar_file(render_site):
    from email import message_from_bytes, policy

    from newsletter.render.message import Recipient
    from newsletter.send.transports.sendgrid import build_request

    occurrence = add_occurrence(render_site, "webinar-april-1d", event_id="webinar-april", session="ru")
    prepared = prepare_occurrence(render_site, load_schedules(render_site), occurrence, "ru", NOW)
    raw = prepared.mime(Recipient(7, "olga@example.org", "Olga", "ru", timezone="Asia/Almaty"))
    message = message_from_bytes(raw, policy=policy.default)
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "webinar-april-ru.ics"
    vevent = icalendar.Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert str(vevent["uid"]) == "webinar-april/ru@127.0.0.1"
    assert vevent.decoded("dtstart") == datetime(2021, 4, 22, 12, tzinfo=ZoneInfo("Europe/Moscow"))
    body = build_request(prepared, [Recipient(7, "olga@example.org", "Olga", "ru")])
    assert body["attachments"][0]["type"] == "text/calendar"
    assert body["attachments"][0]["filename"] == "webinar-april-ru.ics"
    # Without the setting, no attachment: the alternative alone.
    plain = prepare_occurrence(
        render_site,
        load_schedules(render_site),
        add_occurrence(render_site, "webinar-april-14d", event_id="webinar-april", session="ru"),
        "ru",
        NOW,
    )
    assert message_from_bytes(
        plain.mime(Recipient(8, "x@example.org")), policy=policy.default
    ).get_content_type() == ("multipart/alternative")
