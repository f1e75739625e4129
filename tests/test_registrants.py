"""Webinar registrants: a messy export, consent, join reminders to registrants and nudges to the others."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from typer.testing import CliRunner

from newsletter.audience.registrants import decode, parse_registrants, parse_time, store_registrants
from newsletter.audience.select import count_audience, stream_audience
from newsletter.audience.status import leave, set_status
from newsletter.cli import app
from newsletter.errors import InputError
from newsletter.schedule.config import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.schedule.sync import plan_for_site
from newsletter.send.engine import send_occurrence
from newsletter.store.tables import consents, registrations, subscribers, subscriptions
from tests.support.schedule import add_subscribers

NOW = datetime(2021, 4, 19, 9, tzinfo=UTC)
LANGUAGES = ("en", "fr", "es", "ru", "pt")

# What a webinar platform exports: a BOM, a report title and details before the header, CRLF ends,
# duplicates differing in case, and rows that cannot be used.
MESSY = (
    "\ufeffRegistration Report\r\n"
    "Topic,Civil society and the 2021 HLM\r\n"
    "\r\n"
    "First Name,Last Name,Email,Registration Time,Approval Status,language,Extra\r\n"
    "Amadou,Diallo,amadou@example.org,2021-04-10 09:15:00,approved,fr,x\r\n"  # line 5
    "Claire,,Claire@Example.org,04/11/2021 10:00:00 AM,Approved,fr-FR,\r\n"  # 6
    "Amadou,D.,AMADOU@example.org,2021-04-10 09:15:00,approved,fr,\r\n"  # 7: duplicate of 5
    "Bad,Address,not-an-email,2021-04-10 09:00,approved,fr,\r\n"  # 8
    "Late,Comer,late@example.org,yesterday,approved,fr,\r\n"  # 9
    "Who,Knows,who@example.org,,maybe,fr,\r\n"  # 10
    "Deutsch,Sprecher,de@example.org,,approved,de,\r\n"  # 11
    "Pending,Person,pending@example.org,2021-04-12 08:00,pending,,\r\n"  # 12
    "Short,Row\r\n"  # 13
    "Moved,Away,left@example.org,2021-04-13T08:00:00Z,approved,fr,\r\n"  # 14: unsubscribed before
)


def test_parse_a_messy_export():
    parsed = parse_registrants(decode(MESSY.encode("utf-8")), LANGUAGES)
    assert [r.email for r in parsed.registrants] == [
        "amadou@example.org",
        "claire@example.org",
        "pending@example.org",
        "left@example.org",
    ]
    amadou, claire, pending, _left = parsed.registrants
    assert amadou.name == "Amadou Diallo" and amadou.language == "fr" and amadou.line == 5
    assert amadou.registered_at == datetime(2021, 4, 10, 9, 15, tzinfo=UTC)
    assert claire.language == "fr" and claire.registered_at == datetime(2021, 4, 11, 10, tzinfo=UTC)
    assert pending.approval == "pending" and pending.language is None
    reasons = {r.line: r.reason for r in parsed.rejected}
    assert reasons[7] == "duplicate of line 5"
    assert "invalid email address 'not-an-email'" in reasons[8]
    assert "registration time 'yesterday'" in reasons[9]
    assert "approval status 'maybe'" in reasons[10]
    assert "unknown language 'de'" in reasons[11]
    assert "row has 2 fields" in reasons[13]
    assert sorted(reasons) == [7, 8, 9, 10, 11, 13]


def test_decode_utf8_bom_cp1252_and_utf16():
    assert decode("\ufeffEmail\nzoë@example.org\n".encode()) == "Email\nzoë@example.org\n"
    assert decode("Email\nzoë@example.org\n".encode("cp1252")) == "Email\nzoë@example.org\n"
    assert decode("Email\nzoë@example.org\n".encode("utf-16")) == "Email\nzoë@example.org\n"


def test_no_header_is_one_clear_error():
    try:
        parse_registrants("Name,Time\nAna,2021\n", LANGUAGES)
    except InputError as exc:
        assert "no header row with an Email column" in str(exc)
    else:
        raise AssertionError("expected an InputError")


def test_semicolons_and_full_names():
    text = "Name;E-mail;Registration Date\nAna Souza;ana@example.org;2021-04-10 09:15\n"
    [ana] = parse_registrants(text, LANGUAGES).registrants
    assert ana.name == "Ana Souza" and ana.approval == "approved"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_parser_never_escapes_with_a_traceback(text):
    try:
        parsed = parse_registrants(text, LANGUAGES)
    except InputError:
        return
    lines = {r.line for r in parsed.registrants} | {r.line for r in parsed.rejected}
    assert all(line >= 1 for line in lines)
    assert len({r.email for r in parsed.registrants}) == len(parsed.registrants)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "email": st.one_of(st.emails(), st.text(max_size=20)),
                "first": st.text(max_size=15),
                "time": st.one_of(st.just(""), st.datetimes().map(str), st.text(max_size=12)),
                "approval": st.sampled_from(["approved", "Pending", "denied", "", "?"]),
                "language": st.sampled_from(["fr", "en", "pt-BR", "", "zz"]),
            }
        ),
        max_size=12,
    )
)
def test_every_row_is_accepted_or_rejected_with_its_line(rows):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", "First Name", "Registration Time", "Approval Status", "language"])
    for row in rows:
        writer.writerow([row["email"], row["first"], row["time"], row["approval"], row["language"]])
    parsed = parse_registrants(out.getvalue(), LANGUAGES)
    written = sum(1 for row in rows if any(str(v).replace("\x00", "").strip() for v in row.values()))
    assert len(parsed.registrants) + len(parsed.rejected) == written
    for r in parsed.rejected:
        assert r.reason and 2 <= r.line


def test_parse_time_formats():
    assert parse_time("Apr 10, 2021 09:15 AM") == datetime(2021, 4, 10, 9, 15, tzinfo=UTC)
    assert parse_time("2021-04-10T09:15:00+02:00") == datetime(2021, 4, 10, 7, 15, tzinfo=UTC)
    assert parse_time("") is None


def _person(site, email_address):
    with site.store.read() as conn:
        return conn.execute(select(subscribers).where(subscribers.c.email == email_address)).first()


def test_import_stores_registrants_and_keeps_unsubscribed_people_unsubscribed(site, backend):
    add_subscribers(site, [{"email": "left@example.org", "language": "fr"}])
    add_subscribers(site, [{"email": "claire@example.org", "language": "en"}])
    add_subscribers(site, [{"email": "pending@example.org", "language": "en"}])
    left = _person(site, "left@example.org")
    with site.store.write() as conn:
        set_status(conn, left.id, "unsubscribed", source="preferences", now=NOW)  # left the list
        leave(conn, _person(site, "pending@example.org").id, "unsubscribed", source="one-click", now=NOW)
    parsed = parse_registrants(decode(MESSY.encode()), LANGUAGES)
    report = store_registrants(
        site.store,
        parsed,
        event_id="webinar-april",
        session_id="fr",
        default_language="fr",
        source="x.csv",
        now=NOW,
    )
    assert (report.registered, report.new_people, len(report.rejected)) == (3, 1, 7)
    suppressed = next(r for r in report.rejected if r.line == 12)
    assert "suppression list" in suppressed.reason  # unsubscribed from everything: never mailed again
    with site.store.read() as conn:
        statuses = set(
            conn.scalars(select(subscriptions.c.status).where(subscriptions.c.subscriber_id == left.id))
        )
        new = _person(site, "amadou@example.org")
        new_lists = conn.scalar(
            select(subscriptions.c.list_id).where(subscriptions.c.subscriber_id == new.id)
        )
        consent = conn.execute(select(consents).where(consents.c.subscriber_id == new.id)).one()
        approvals = dict(
            conn.execute(
                select(subscribers.c.email, registrations.c.approval).join(
                    registrations, registrations.c.subscriber_id == subscribers.c.id
                )
            )
            .tuples()
            .all()
        )
    from newsletter.audience.subscribers import show

    assert show(site.store, "amadou@example.org")["registrations"][0]["event_id"] == "webinar-april"
    assert statuses == {"unsubscribed"}  # registering resubscribes nobody
    assert new_lists is None  # a registrant who was not a subscriber joins no list
    assert consent.action == "register" and consent.list_id is None
    assert "registration for the webinar webinar-april/fr" in consent.detail and "line 5" in consent.detail
    assert new.language == "fr" and new.name == "Amadou Diallo"
    assert _person(site, "claire@example.org").language == "en"  # an existing profile is left alone
    assert "pending@example.org" not in approvals and approvals["left@example.org"] == "approved"
    again = store_registrants(
        site.store,
        parsed,
        event_id="webinar-april",
        session_id="fr",
        default_language="fr",
        source="x.csv",
        now=NOW,
    )
    assert (again.registered, again.updated, again.unchanged, again.new_people) == (0, 0, 3, 0)


def _register(site, people, target):
    event_id, _, session = target.partition("/")
    with site.store.write() as conn:
        for address in people:
            sid = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == address))
            if sid is None:
                sid = conn.execute(
                    insert(subscribers)
                    .values(
                        email=address,
                        name="",
                        language="fr",
                        timezone="Africa/Abidjan",
                        country="",
                        attributes={},
                        created_at=NOW,
                        updated_at=NOW,
                    )
                    .returning(subscribers.c.id)
                ).scalar_one()
            conn.execute(
                insert(registrations).values(
                    event_id=event_id,
                    session=session,
                    subscriber_id=sid,
                    approval="approved",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )


def _emails(site, audience):
    return sorted(p.email for p in stream_audience(site.store, audience, page=2))


def test_a_registrant_of_a_session_gets_its_reminder_whatever_their_language(site, backend):
    add_subscribers(site, [{"email": "en-reader@example.org", "language": "en"}])
    _register(site, ["en-reader@example.org"], "webinar-april/fr")
    [planned] = [
        s
        for s in plan_for_site(site, datetime(2021, 4, 15, tzinfo=UTC), days=8)
        if s.key == "webinar-april-1d/webinar-april/fr"
    ]
    assert planned.audience_by_language == {"fr": 1}
    join = create_adhoc(
        site.store, load_schedules(site), "webinar-april-1d", event_id="webinar-april", session="fr", now=NOW
    )
    assert send_occurrence(site, join, NOW, load_schedules(site)).sent == 1


def test_registered_for_and_not_registered_for(site, backend):
    add_subscribers(site, [{"email": f"m{i}@example.org", "language": "fr"} for i in range(4)])
    _register(site, ["m0@example.org", "outsider@example.org"], "webinar-april/fr")
    _register(site, ["m1@example.org"], "webinar-april")  # the whole event: every session
    _register(site, ["m2@example.org"], "webinar-april/en")
    campaigns = load_schedules(site).campaigns
    from newsletter.audience.segments import for_session

    join = for_session(campaigns["webinar-april-1d"].audience, "webinar-april", "fr")
    nudge = for_session(campaigns["webinar-april-register"].audience, "webinar-april", "fr")
    assert _emails(site, join) == ["m0@example.org", "m1@example.org", "outsider@example.org"]
    assert _emails(site, nudge) == ["m2@example.org", "m3@example.org"]
    # Never a newsletter: the list audiences do not know the registrant who is not a subscriber.
    assert "outsider@example.org" not in _emails(site, campaigns["weekly-digest"].audience)
    assert count_audience(site.store, join) == {"fr": 3}


def test_join_reminders_to_registrants_and_register_nudges_to_the_others(site, backend):
    add_subscribers(site, [{"email": f"m{i}@example.org", "language": "fr"} for i in range(3)])
    add_subscribers(site, [{"email": "reads-english@example.org", "language": "en"}])
    _register(site, ["m0@example.org", "outsider@example.org"], "webinar-april/fr")
    join = create_adhoc(
        site.store, load_schedules(site), "webinar-april-1d", event_id="webinar-april", session="fr", now=NOW
    )
    assert send_occurrence(site, join, NOW, load_schedules(site)).sent == 2
    # The French session's nudge goes to French readers (the English one has its own session's).
    nudge = create_adhoc(
        site.store,
        load_schedules(site),
        "webinar-april-register",
        event_id="webinar-april",
        session="fr",
        now=NOW,
    )
    assert send_occurrence(site, nudge, NOW, load_schedules(site)).sent == 2
    by_person: dict[str, list[str]] = {}
    for path in site.outbox_dir.iterdir():
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        html = message.get_body(("html",)).get_content()
        who = str(message["To"]).split("<")[-1].rstrip(">")
        join, register = (
            "rejoindre la session en ligne" in html,
            "Je m&#39;inscris" in html or "Je m'inscris" in html,
        )
        kind = "join" if join and not register else "register" if register and not join else "?"
        assert "/ics/webinar-april/fr.ics" in html
        by_person.setdefault(who, []).append(kind)
    assert by_person == {
        "m0@example.org": ["join"],
        "outsider@example.org": ["join"],
        "m1@example.org": ["register"],
        "m2@example.org": ["register"],
    }


def test_cli_import(site, site_dir, site_env, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(MESSY.encode("utf-8"))
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["registrants", "import", "webinar-april/fr", str(path), "--site", str(site_dir), "--json"],
        env=site_env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["registered"] == 4 and report["rejected"] == 6
    assert {r["line"] for r in report["rejected_rows"]} == {7, 8, 9, 10, 11, 13}
    shown = runner.invoke(
        app, ["registrants", "import", "webinar-april/fr", str(path), "--site", str(site_dir)], env=site_env
    )
    assert f"{path}:8: invalid email address" in shown.stderr
    bad = runner.invoke(
        app, ["registrants", "import", "webinar-april/xx", str(path), "--site", str(site_dir)], env=site_env
    )
    assert bad.exit_code == 2 and "has no session 'xx'" in bad.stderr
