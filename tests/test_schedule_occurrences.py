"""Occurrences in the store: reconcile (add, move, drop), misfire verdicts, pause/resume/cancel, ad hoc."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter.errors import InputError
from newsletter.schedule import occurrences as occ
from newsletter.schedule import sync
from newsletter.schedule.load import load_schedules
from newsletter.site import Site
from newsletter.store.tables import occurrences
from tests.support.schedule import write_schedules

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)

BASE = """\
events:
  - id: webinar
    kind: webinar
    title: {en: A webinar}
    start: 2030-03-20T14:00
    timezone: Europe/London
    sessions:
      - {id: en, language: en, start: 2030-03-20T14:00, timezone: Europe/London}
      - {id: ru, language: ru, start: 2030-03-21T12:00, timezone: Europe/Moscow}
campaigns:
  - id: remind
    template: event_reminder
    audience: {lists: [members]}
    trigger: {before: 1d, event: webinar, per_session: true}
"""


def rows(site: Site) -> dict[str, object]:
    with site.store.read() as conn:
        return {r.key: r for r in conn.execute(select(occurrences))}


def test_reconcile_adds_moves_drops(sched_site: Site) -> None:
    write_schedules(sched_site, BASE)
    assert sync.reconcile(sched_site, NOW).summary() == {"added": 2, "moved": 0, "dropped": 0, "missed": 0}
    first = rows(sched_site)
    assert first["remind/webinar/ru"].due_at == datetime(2030, 3, 20, 9, 0, tzinfo=UTC)
    assert first["remind/webinar/ru"].languages == ["ru"]
    # Reconciling again changes nothing: keys are unique and stable.
    assert sync.reconcile(sched_site, NOW).summary() == {"added": 0, "moved": 0, "dropped": 0, "missed": 0}
    # The Russian session moves a day later: same occurrence, new time.
    write_schedules(sched_site, BASE.replace("2030-03-21T12:00", "2030-03-22T12:00"))
    assert sync.reconcile(sched_site, NOW).summary()["moved"] == 1
    moved = rows(sched_site)["remind/webinar/ru"]
    assert moved.id == first["remind/webinar/ru"].id and moved.due_at == datetime(
        2030, 3, 21, 9, 0, tzinfo=UTC
    )
    # The session is dropped from the file: its pending send is cancelled with the reason.
    write_schedules(
        sched_site,
        BASE.replace(
            "      - {id: ru, language: ru, start: 2030-03-21T12:00, timezone: Europe/Moscow}\n", ""
        ),
    )
    assert sync.reconcile(sched_site, NOW).summary()["dropped"] == 1
    dropped = rows(sched_site)["remind/webinar/ru"]
    assert dropped.status == "cancelled" and "no longer in the plan" in dropped.reason
    # The event is cancelled: every pending send of it goes.
    write_schedules(
        sched_site, BASE.replace("    kind: webinar\n", "    kind: webinar\n    cancelled: true\n")
    )
    sync.reconcile(sched_site, NOW)
    after = rows(sched_site)
    assert after["remind/webinar/en"].status == "cancelled"
    assert "event 'webinar' is cancelled" in after["remind/webinar/en"].reason
    # Uncancelled: the dropped sends come back (cancellations made by people would not).
    write_schedules(sched_site, BASE)
    sync.reconcile(sched_site, NOW)
    assert {r.status for r in rows(sched_site).values()} == {"scheduled"}


def test_sent_occurrences_are_never_moved_or_redone(sched_site: Site) -> None:
    write_schedules(sched_site, BASE)
    sync.reconcile(sched_site, NOW)
    en = rows(sched_site)["remind/webinar/en"]
    row, why = occ.claim(sched_site.store, en.id, en.due_at)
    assert row is not None and row.status == "sending" and why == ""
    assert occ.claim(sched_site.store, en.id, en.due_at)[0] is None  # at most once
    write_schedules(sched_site, BASE.replace("2030-03-20T14:00", "2030-03-25T14:00"))
    sync.reconcile(sched_site, NOW)
    again = rows(sched_site)["remind/webinar/en"]
    assert again.status == "sending" and again.due_at == en.due_at


def test_overdue_verdicts() -> None:
    due = datetime(2030, 3, 19, 14, 0, tzinfo=UTC)
    start = due + timedelta(days=1)
    assert occ.overdue_reason(due, timedelta(hours=6), start, due + timedelta(hours=5)) is None
    late = occ.overdue_reason(due, timedelta(hours=6), start, due + timedelta(hours=7))
    assert late and "7h late" in late and "late_by window of 6h" in late
    started = occ.overdue_reason(due, timedelta(days=3), start, start + timedelta(minutes=1))
    assert started and "reminders are never sent after the start" in started


def test_reconcile_records_missed_with_reason(sched_site: Site) -> None:
    write_schedules(sched_site, BASE)
    sync.reconcile(sched_site, NOW)
    # The scheduler was down from before the English reminder until after the session began.
    later = datetime(2030, 3, 20, 14, 30, tzinfo=UTC)
    assert sync.reconcile(sched_site, later).summary()["missed"] == 1
    en = rows(sched_site)["remind/webinar/en"]
    assert en.status == "missed" and "never sent after the start" in en.reason
    assert rows(sched_site)["remind/webinar/ru"].status == "scheduled"


def test_pause_resume_cancel(sched_site: Site) -> None:
    write_schedules(sched_site, BASE)
    sync.reconcile(sched_site, NOW)
    assert occ.pause(sched_site.store, "remind/webinar/en").status == "paused"
    # A paused send does not fire.
    en = rows(sched_site)["remind/webinar/en"]
    assert occ.claim(sched_site.store, en.id, en.due_at) == (None, "occurrence remind/webinar/en is paused")
    assert occ.resume(sched_site.store, str(en.id)).status == "scheduled"
    assert occ.cancel(sched_site.store, en.id).status == "cancelled"
    with pytest.raises(InputError, match="is cancelled: only paused ones can be resumed"):
        occ.resume(sched_site.store, en.id)
    with pytest.raises(InputError, match="no occurrence 'nope'"):
        occ.pause(sched_site.store, "nope")
    # A cancellation by hand survives reconciles.
    sync.reconcile(sched_site, NOW)
    assert rows(sched_site)["remind/webinar/en"].status == "cancelled"


def test_create_adhoc(sched_site: Site) -> None:
    write_schedules(sched_site, BASE)
    ident = occ.create_adhoc(
        sched_site.store, load_schedules(sched_site), "remind", event_id="webinar", session="ru", now=NOW
    )
    row = occ.get(sched_site.store, ident)
    assert (
        row.status == "sending" and row.languages == ["ru"] and row.key.startswith("adhoc/remind/webinar/ru/")
    )
    with pytest.raises(InputError, match="no campaign 'nope'"):
        occ.create_adhoc(sched_site.store, load_schedules(sched_site), "nope", now=NOW)
    with pytest.raises(InputError, match="has no such session"):
        occ.create_adhoc(
            sched_site.store, load_schedules(sched_site), "remind", event_id="webinar", session="xx", now=NOW
        )
    # Reconcile leaves ad hoc sends alone.
    sync.reconcile(sched_site, NOW)
    assert occ.get(sched_site.store, ident).status == "sending"


def test_schedule_commands(sched_site: Site) -> None:
    from typer.testing import CliRunner

    from newsletter.cli import app

    # A site whose sends lie ahead of the real clock, so the commands (which use it) find them.
    start = datetime.now(UTC) + timedelta(days=10)
    write_schedules(
        sched_site,
        BASE.replace("2030-03-20T14:00", f"{start:%Y-%m-%dT%H:%M}").replace(
            "2030-03-21T12:00", f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}"
        ),
    )
    env = {"NEWSLETTER_DATABASE_URL": sched_site.settings["database_url"]}
    cli = CliRunner()

    def run(*args: str) -> str:
        result = cli.invoke(app, [*args, "--site", str(sched_site.root)], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "remind/webinar/en" in run("schedule", "pause", "remind/webinar/en") and "paused" in run(
        "plan", "--days", "30"
    )
    assert ": scheduled" in run("schedule", "resume", "remind/webinar/en")
    assert ": cancelled" in run("schedule", "cancel", "remind/webinar/ru")
    failed = cli.invoke(
        app, ["schedule", "resume", "remind/webinar/ru", "--site", str(sched_site.root)], env=env
    )
    assert failed.exit_code == 2 and "only paused ones can be resumed" in failed.output
    assert rows(sched_site)["remind/webinar/ru"].status == "cancelled"


def test_local_time_occurrence_fires_early_and_each_subscriber_gets_their_hour(sched_site: Site) -> None:
    """hlm-1d: 09:00 on 7 June 2021 in each subscriber's zone, fired at the first of them."""
    from newsletter.send.engine import enqueue_occurrence
    from newsletter.store.tables import sends
    from tests.support.schedule import add_subscribers

    add_subscribers(
        sched_site,
        [
            {"email": "bkk@example.org", "language": "en", "timezone": "Asia/Bangkok"},
            {"email": "la@example.org", "language": "es", "timezone": "America/Los_Angeles"},
        ],
    )
    now = datetime(2021, 6, 5, tzinfo=UTC)
    sync.reconcile(sched_site, now)
    row = occ.get(sched_site.store, "hlm-1d/hlm-2021")
    assert row.due_at == datetime(2021, 6, 7, 14, 0, tzinfo=UTC)  # the trigger: a day before 10:00 New York
    assert occ.fire_at(row) == datetime(2021, 6, 7, 2, 0, tzinfo=UTC)  # 09:00 in Bangkok comes first
    claimed, _ = occ.claim(sched_site.store, row.id, occ.fire_at(row))
    assert claimed is not None
    enqueue_occurrence(sched_site, row.id, occ.fire_at(row), load_schedules(sched_site))
    with sched_site.store.read() as conn:
        query = select(sends.c.email, sends.c.not_before).where(sends.c.occurrence_id == row.id)
        times = {email: at for email, at in conn.execute(query)}
    assert times["bkk@example.org"] == datetime(2021, 6, 7, 2, 0, tzinfo=UTC)
    assert times["la@example.org"] == datetime(2021, 6, 7, 16, 0, tzinfo=UTC)


def test_claim_applies_late_by_and_event_start(sched_site: Site) -> None:
    write_schedules(sched_site, BASE.replace("per_session: true}", "per_session: true}\n    late_by: 2h"))
    sync.reconcile(sched_site, NOW)
    en, ru = rows(sched_site)["remind/webinar/en"], rows(sched_site)["remind/webinar/ru"]
    # The job came up three hours late (say APScheduler ran it after a suspend): beyond late_by 2h.
    assert occ.claim(sched_site.store, ru.id, ru.due_at + timedelta(hours=3))[0] is None
    ru_after = occ.get(sched_site.store, ru.id)
    assert ru_after.status == "missed" and "late_by window of 2h" in ru_after.reason
    # Within late_by but after the session started: a reminder is never sent then.
    session_start = en.due_at + timedelta(days=1)
    assert occ.claim(sched_site.store, en.id, session_start + timedelta(minutes=1))[0] is None
    en_after = occ.get(sched_site.store, en.id)
    assert en_after.status == "missed" and "never sent after the start" in en_after.reason


def test_recurring_occurrences_across_dst_in_the_store(sched_site: Site) -> None:
    """The weekly digest, reconciled before, during and after both transitions: one row per Monday."""
    days = 16
    for now in (
        datetime(2021, 3, 20, tzinfo=UTC),
        datetime(2021, 3, 28, 0, 30, tzinfo=UTC),  # the night of the change
        datetime(2021, 3, 28, 3, 0, tzinfo=UTC),
        datetime(2021, 10, 20, tzinfo=UTC),
        datetime(2021, 10, 31, 1, 30, tzinfo=UTC),  # 01:30 UTC: the second 01:30 in London
        datetime(2021, 11, 2, tzinfo=UTC),
    ):
        sync.reconcile(sched_site, now, days=days)
    digests = {k: r for k, r in rows(sched_site).items() if k.startswith("weekly-digest/")}
    # A week back from the first look (recorded as missed), then every Monday to the horizon.
    spring = ["2021-03-15", "2021-03-22", "2021-03-29", "2021-04-05", "2021-04-12"]
    fall = ["2021-10-18", "2021-10-25", "2021-11-01", "2021-11-08", "2021-11-15"]
    assert sorted(digests) == [f"weekly-digest/{d}" for d in spring + fall]
    hours = {k.split("/")[1]: r.due_at.hour for k, r in digests.items()}
    assert [hours[d] for d in spring] == [9, 9, 8, 8, 8]  # 09:00 GMT, then 09:00 BST
    assert [hours[d] for d in fall] == [8, 8, 9, 9, 9]
    # Nothing fired them (no scheduler ran): by 2 November the past ones are missed, none dropped.
    statuses = {k.split("/")[1]: r.status for k, r in digests.items()}
    assert statuses == {d: "missed" for d in spring + fall[:3]} | {d: "scheduled" for d in fall[3:]}


def test_concurrent_reconciles_store_each_key_once(sched_site: Site) -> None:
    import threading

    write_schedules(sched_site, BASE)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            sync.reconcile(sched_site, NOW)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(rows(sched_site)) == ["remind/webinar/en", "remind/webinar/ru"]
