"""Behavioural segments on recorded events: human actions only, campaigns, labels, windows; both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from newsletter.audience.select import count_audience, stream_audience
from newsletter.campaigns import Activity
from newsletter.schedule.config import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.schedule.sync import plan_for_site
from newsletter.send.engine import send_occurrence
from newsletter.store.tables import events, occurrences, sends, subscribers
from tests.support.schedule import add_subscribers

NOW = datetime(2021, 5, 29, 12, tzinfo=UTC)
SIGN_ON = "declaration-sign-on"


def _occurrence(conn, campaign: str, at: datetime) -> int:
    return int(
        conn.execute(
            insert(occurrences)
            .values(
                key=f"{campaign}/test/{at.isoformat()}",
                campaign=campaign,
                due_at=at,
                status="sent",
                languages=["en"],
                created_at=at,
                updated_at=at,
            )
            .returning(occurrences.c.id)
        ).scalar_one()
    )


def _send(conn, occurrence_id: int, email: str, at: datetime) -> int:
    person = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
    return int(
        conn.execute(
            insert(sends)
            .values(
                occurrence_id=occurrence_id,
                subscriber_id=person,
                email=email,
                language="en",
                status="sent",
                created_at=at,
                sent_at=at,
            )
            .returning(sends.c.id)
        ).scalar_one()
    )


def _event(conn, send_id: int, kind: str, at: datetime, label: str = "", machine: bool = False) -> None:
    conn.execute(
        insert(events).values(
            kind=kind,
            source="redirect" if kind == "click" else "pixel",
            send_id=send_id,
            label=label or None,
            machine=machine,
            at=at,
        )
    )


def _record(site) -> None:
    """The sign-on calls went out; what each person did afterwards."""
    people = ["clicked", "signed", "bot", "other-link", "digest-click", "long-ago", "opened-only", "apple"]
    add_subscribers(site, [{"email": f"{p}@example.org", "language": "en"} for p in people])
    call, three_days, digest = NOW - timedelta(days=15), NOW - timedelta(days=4), NOW - timedelta(days=3)
    with site.store.write() as conn:
        signon_14d = _occurrence(conn, "signon-14d", call)
        signon_3d = _occurrence(conn, "signon-3d", three_days)
        weekly = _occurrence(conn, "weekly-digest", digest)
        old = _occurrence(conn, "signon-14d", NOW - timedelta(days=60))
        s = {p: _send(conn, signon_14d, f"{p}@example.org", call) for p in people}
        _event(conn, s["clicked"], "open", call + timedelta(hours=1))
        _event(conn, s["clicked"], "click", call + timedelta(hours=1), SIGN_ON)
        _event(conn, s["signed"], "click", call + timedelta(hours=2), SIGN_ON)
        _event(conn, s["signed"], "conversion", call + timedelta(hours=2, minutes=5), SIGN_ON)
        _event(conn, s["bot"], "click", call + timedelta(seconds=2), SIGN_ON, machine=True)  # a link scanner
        _event(conn, s["bot"], "open", call + timedelta(seconds=2), machine=True)
        _event(conn, s["other-link"], "click", call + timedelta(hours=3), "hub-home")
        _event(conn, s["opened-only"], "open", call + timedelta(hours=3))
        _event(conn, s["apple"], "open", call, machine=True)  # Apple Mail Privacy Protection
        late = _send(conn, signon_3d, "clicked@example.org", three_days)
        _event(conn, late, "click", three_days + timedelta(hours=1), SIGN_ON)  # clicked again: one person
        d = _send(conn, weekly, "digest-click@example.org", digest)
        _event(conn, d, "click", digest + timedelta(hours=1), SIGN_ON)  # not one of the sign-on calls
        o = _send(conn, old, "long-ago@example.org", NOW - timedelta(days=60))
        _event(conn, o, "click", NOW - timedelta(days=59), SIGN_ON)  # outside `within: 30d`


def _people(site, audience, now=NOW):
    return sorted(p.email.split("@")[0] for p in stream_audience(site.store, audience, page=3, now=now))


def test_clicked_but_did_not_sign(site, backend):
    _record(site)
    audience = load_schedules(site).campaigns["signon-clicked-not-signed"].audience
    assert _people(site, audience) == ["clicked"]
    assert count_audience(site.store, audience, NOW) == {"en": 1}
    with_bots = replace(audience, include_machine=True)
    assert _people(site, with_bots) == ["bot", "clicked"]
    any_campaign = replace(audience, clicked=Activity(label=SIGN_ON), within=None)
    assert _people(site, any_campaign) == ["clicked", "digest-click", "long-ago"]


def test_opened_not_opened_and_converted(site, backend):
    _record(site)
    base = load_schedules(site).campaigns["signon-14d"].audience
    opened = replace(base, opened=Activity(campaigns=("signon-14d",)))
    assert _people(site, opened) == ["clicked", "opened-only"]  # machine opens are no opens
    not_opened = replace(base, not_opened=Activity(campaigns=("signon-14d",)), within=timedelta(days=30))
    assert _people(site, not_opened) == ["apple", "bot", "digest-click", "long-ago", "other-link", "signed"]
    assert _people(site, replace(base, converted=True)) == ["signed"]
    clicked_any = replace(base, clicked=Activity(), within=timedelta(days=30))
    assert _people(site, clicked_any) == ["clicked", "digest-click", "other-link", "signed"]
    not_clicked = replace(base, not_clicked=Activity(label=SIGN_ON), within=timedelta(days=30))
    assert _people(site, not_clicked) == ["apple", "bot", "long-ago", "opened-only", "other-link"]


def test_within_needs_the_time_of_selection(site, backend):
    audience = load_schedules(site).campaigns["signon-clicked-not-signed"].audience
    try:
        list(stream_audience(site.store, audience))
    except ValueError as exc:
        assert "within" in str(exc)
    else:
        raise AssertionError("expected a ValueError")


def test_follow_up_goes_only_to_those_people_and_plan_shows_its_size(site, backend):
    _record(site)
    [planned] = [
        s
        for s in plan_for_site(site, NOW - timedelta(hours=1), days=3)
        if s.campaign == "signon-clicked-not-signed"
    ]
    assert planned.audience_by_language == {"en": 1}
    assert (
        planned.segment == "clicked declaration-sign-on in signon-14d, signon-3d, did not convert, within 30d"
    )
    occurrence = create_adhoc(site.store, load_schedules(site), "signon-clicked-not-signed", now=NOW)
    assert send_occurrence(site, occurrence, NOW, load_schedules(site)).sent == 1
    with site.store.read() as conn:
        assert list(conn.scalars(select(sends.c.email).where(sends.c.occurrence_id == occurrence))) == [
            "clicked@example.org"
        ]


def test_dashboard_shows_the_segment_and_its_size_per_language(admin_site, admin_server):
    import re

    import httpx

    from tests.support.report import PASSWORD

    _record(admin_site.site)
    with httpx.Client(base_url=admin_server.url, timeout=20) as client:
        page = client.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        client.post(
            "/admin/login",
            data={"csrf": csrf, "email": admin_site.organiser, "password": PASSWORD, "next": "/admin/"},
        )
        html = client.get("/admin/", params={"at": "2021-05-29T11:00"}).text
    row = next(r for r in html.split("<tr") if "signon-clicked-not-signed" in r)
    assert "to those clicked declaration-sign-on in signon-14d, signon-3d, did not convert, within 30d" in row
    assert re.search(r"en 1\b", row), row
