"""The persistent scheduler on a real SQLite file and PostgreSQL: restart, misfire, standby, edits, run."""

from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from newsletter.runner import Runner
from newsletter.schedule import occurrences as occ
from newsletter.schedule import sync
from newsletter.schedule.load import load_schedules
from newsletter.send.worker import run_worker
from newsletter.site import Site
from tests.conftest import REPO
from tests.support.schedule import Clock, Recorder, add_subscribers, at_campaign, write_schedules

HEAD = "campaigns:\n"


def runner(site: Site, recorder: Recorder | None, clock: Clock) -> Runner:
    return Runner(site, enqueue=recorder, clock=clock, watch_seconds=0.3)


def status(site: Site, key: str) -> tuple[str, str]:
    row = occ.get(site.store, key)
    return row.status, row.reason


def test_restart_fires_at_most_once(sched_site: Site, recorder: Recorder) -> None:
    clock = Clock(datetime.now(UTC))
    due = clock.now + timedelta(minutes=5)
    write_schedules(sched_site, HEAD + at_campaign("soon", due))
    first = runner(sched_site, recorder, clock)
    assert first.start(paused=True)
    assert first.run_due() == []  # not due yet
    first.stop()  # down before it was due
    with sched_site.store.read() as conn:
        stored = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
    assert stored == [f"occurrence-{occ.get(sched_site.store, 'soon').id}"]  # persisted in the database
    clock.advance(minutes=10)  # it fell due while no scheduler ran
    second = runner(sched_site, recorder, clock)
    assert second.start(paused=True)
    try:
        assert second.run_due() == ["queued 0"]  # the missed job runs on start, inside its late_by window
    finally:
        second.stop()
    third = runner(sched_site, recorder, clock)
    assert third.start(paused=True)
    clock.advance(minutes=1)
    assert third.run_due() == []
    third.stop()
    assert recorder.calls == [occ.get(sched_site.store, "soon").id]
    assert status(sched_site, "soon")[0] == "sent"  # handed over; an empty audience is done at once


def test_the_scheduler_loop_fires_a_due_job(sched_site: Site, recorder: Recorder) -> None:
    """APScheduler's own loop, on wall time: a job due now fires without anyone driving it."""
    write_schedules(sched_site, HEAD + at_campaign("now", datetime.now(UTC) - timedelta(seconds=1)))
    r = Runner(sched_site, enqueue=recorder, watch_seconds=0.3)
    assert r.start()
    try:
        assert recorder.wait(1)
    finally:
        r.stop()
    assert recorder.calls == [occ.get(sched_site.store, "now").id]


def test_misfires_on_start(sched_site: Site, recorder: Recorder) -> None:
    clock = Clock(datetime.now(UTC))
    now = clock.now
    start = now - timedelta(minutes=10)
    write_schedules(
        sched_site,
        "events:\n  - id: talk\n    kind: webinar\n    title: {en: Talk}\n"
        f"    start: '{start:%Y-%m-%dT%H:%M:%S}'\n    timezone: UTC\n"
        + HEAD
        + at_campaign("late-but-ok", now - timedelta(minutes=10), late_by="1h")
        + at_campaign("too-late", now - timedelta(hours=2), late_by="1h")
        + "  - id: reminder\n    template: event_reminder\n    audience: {lists: [members]}\n"
        "    trigger: {before: 1h, event: talk}\n    late_by: 3h\n",
    )
    r = runner(sched_site, recorder, clock)
    assert r.start(paused=True)
    try:
        assert r.run_due() == ["queued 0"]
    finally:
        r.stop()
    assert recorder.calls == [occ.get(sched_site.store, "late-but-ok").id]
    assert status(sched_site, "late-but-ok")[0] == "sent"
    state, reason = status(sched_site, "too-late")
    assert state == "missed" and "beyond its late_by window of 1h" in reason
    state, reason = status(sched_site, "reminder/talk")
    assert state == "missed" and "never sent after the start" in reason


def test_second_scheduler_waits_as_standby(sched_site: Site, recorder: Recorder) -> None:
    clock = Clock(datetime.now(UTC))
    write_schedules(sched_site, HEAD + at_campaign("once", clock.now + timedelta(minutes=1)))
    active = runner(sched_site, recorder, clock)
    assert active.start(paused=True)
    standby_site = Site.load(
        sched_site.root,
        environ={
            "NEWSLETTER_DATABASE_URL": sched_site.settings["database_url"],
            "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789",
        },
    )
    standby = runner(standby_site, recorder, clock)
    waiting, started, stop = threading.Event(), threading.Event(), threading.Event()

    def second() -> None:
        if standby.start(stop, on_wait=waiting.set, paused=True):
            started.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert waiting.wait(5) and not started.is_set()
        clock.advance(minutes=2)
        assert active.run_due() == ["queued 0"]
        active.stop()  # the standby takes over
        assert started.wait(5)
        clock.advance(minutes=1)
        assert standby.run_due() == []  # nothing left to fire: not sent twice
        assert recorder.calls == [occ.get(sched_site.store, "once").id]
    finally:
        stop.set()
        thread.join()
        active.stop()
        standby.stop()
        standby_site.close()


def test_invalid_edit_keeps_previous_schedule(sched_site: Site) -> None:
    """An occurrence that falls due while schedules.yaml is invalid goes out as it was planned."""
    add_subscribers(sched_site, [{"email": f"p{i}@example.org", "language": "en"} for i in range(2)])
    clock = Clock(datetime.now(UTC))
    due = clock.now + timedelta(minutes=5)

    def kept(template: str = "call_to_action") -> str:
        return at_campaign("kept", due, template=template) + "    subject: {en: The planned subject}\n"

    write_schedules(sched_site, HEAD + kept())
    r = runner(sched_site, None, clock)  # the real send engine
    assert r.start(paused=True)
    try:
        write_schedules(sched_site, HEAD + kept(template="nosuch"))
        assert r.refresh() is False
        assert "unknown template 'nosuch'" in r.last_error
        clock.advance(minutes=6)
        assert r.run_due() == ["queued 2"]  # enqueued from the schedule in force, not the broken file
        tally = run_worker(sched_site, threading.Event(), once=True, schedules=lambda: r.schedules)
        assert tally.sent == 2 and not tally.errors
        assert status(sched_site, "kept")[0] == "sent"
        subjects = {
            email.message_from_bytes(p.read_bytes())["Subject"] for p in sched_site.outbox_dir.glob("*.eml")
        }
        assert subjects == {"The planned subject"}
        # A valid edit is picked up by the watch: a new campaign gets its job and fires.
        soon = clock.now + timedelta(minutes=1)
        write_schedules(sched_site, HEAD + kept() + at_campaign("added", soon))
        os.utime(sched_site.schedules_file, ns=(time.time_ns(), time.time_ns() + 10**9))
        r.tick(force=False)
        assert r.last_error == ""
        clock.advance(minutes=2)
        assert r.run_due() == ["queued 2"]
    finally:
        r.stop()
    assert occ.get(sched_site.store, "added").status == "sending"  # handed to the send stage


def test_invalid_file_refuses_to_start(sched_site: Site, recorder: Recorder) -> None:
    write_schedules(sched_site, HEAD + at_campaign("x", datetime.now(UTC), template="nosuch"))
    from newsletter.schedule.config import ScheduleError

    with pytest.raises(ScheduleError, match="unknown template"):
        runner(sched_site, recorder, Clock(datetime.now(UTC))).start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_run(site: Site, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": site.settings["database_url"],
        "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789",
        "NEWSLETTER_PORT": str(port),
        "NEWSLETTER_FEED_PULL_MINUTES": "0",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "newsletter", "run", "--site", str(site.root)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _until(check: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_run_command_standby_takeover_and_sigterm(sched_site: Site, tmp_path: Path) -> None:
    """Two `newsletter run` on one database: the second waits; it takes over when the first stops."""
    port1, port2 = _free_port(), _free_port()
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"
    first = _start_run(sched_site, port1, log1)
    second: subprocess.Popen[bytes] | None = None
    try:
        assert _until(lambda: _healthy(port1)), log1.read_text()
        # Reconciled on start: the weekly digest's next Mondays are stored.
        with sched_site.store.read() as conn:
            keys = conn.execute(text("SELECT key FROM occurrences")).scalars().all()
        assert any(k.startswith("weekly-digest/") for k in keys)
        second = _start_run(sched_site, port2, log2)
        assert _until(lambda: "waiting as standby" in log2.read_text()), log2.read_text()
        assert not _healthy(port2)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, log1.read_text()
        assert _until(lambda: _healthy(port2)), log2.read_text()  # the standby took over
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, log2.read_text()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log1.read_text()
    assert "SIGTERM: stopping" in output and "stopped" in output


def test_fire_hands_over_to_the_send_engine_once(sched_site: Site) -> None:
    """The real send engine: ledger rows for the audience, written once however often it fires."""
    from newsletter import jobs
    from newsletter.store.tables import sends
    from tests.support.schedule import add_subscribers

    add_subscribers(sched_site, [{"email": f"p{i}@example.org", "language": "en"} for i in range(3)])
    due = datetime.now(UTC) - timedelta(minutes=1)
    write_schedules(sched_site, HEAD + at_campaign("now", due))
    sync.reconcile(sched_site, datetime.now(UTC))
    ident = occ.get(sched_site.store, "now").id
    jobs.bind(jobs.Binding(sched_site, lambda: load_schedules(sched_site)))
    try:
        assert jobs.fire(ident) == "queued 3"
        assert jobs.fire(ident) == "occurrence now is sending"
    finally:
        jobs.bind(None)
    with sched_site.store.read() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM sends WHERE occurrence_id = :i"), {"i": ident}
        ).scalar()
    assert count == 3 and sends.name == "sends"


def test_start_finishes_a_hand_over_cut_by_a_crash(sched_site: Site) -> None:
    from tests.support.schedule import add_subscribers

    add_subscribers(sched_site, [{"email": f"p{i}@example.org", "language": "fr"} for i in range(2)])
    write_schedules(sched_site, HEAD + at_campaign("cut", datetime.now(UTC) - timedelta(minutes=1)))
    sync.reconcile(sched_site, datetime.now(UTC))
    ident = occ.get(sched_site.store, "cut").id
    row, _ = occ.claim(sched_site.store, ident, datetime.now(UTC))  # claimed, then the process died
    assert row is not None and occ.interrupted(sched_site.store) == [ident]
    r = Runner(sched_site, watch_seconds=0.3)  # the real send engine
    assert r.start()
    r.stop()
    assert occ.interrupted(sched_site.store) == []
    with sched_site.store.read() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM sends WHERE occurrence_id = :i"), {"i": ident}
        ).scalar()
    assert count == 2


def test_digest_only_if_new_items(sched_site: Site, recorder: Recorder) -> None:
    """A digest with nothing new since the last one is skipped; a new feed item lets the next one go."""
    from newsletter import jobs
    from newsletter.feeds.pull import pull_feeds

    def digest(ident: str) -> str:
        when = datetime.now(UTC) - timedelta(minutes=1)
        return (
            f"  - id: {ident}\n    template: digest\n    audience: {{lists: [members]}}\n"
            f"    trigger: {{at: '{when:%Y-%m-%dT%H:%M:%S}', timezone: UTC, only_if_new_items: true}}\n"
        )

    pull_feeds(sched_site)  # the first pull: what the feeds hold already is not news
    write_schedules(sched_site, HEAD + digest("quiet-week") + digest("busy-week"))
    sync.reconcile(sched_site, datetime.now(UTC))
    jobs.bind(jobs.Binding(sched_site, lambda: load_schedules(sched_site), enqueue=recorder))
    try:
        quiet = occ.get(sched_site.store, "quiet-week")
        assert jobs.fire(quiet.id).startswith("skipped: no new items since")
        assert occ.get(sched_site.store, quiet.id).status == "skipped" and recorder.calls == []
        feed = sched_site.root / "feeds" / "hub-en.xml"
        item = (
            "<item><title>New: the sign-on list passes 1,000 organisations</title>"
            "<link>https://hlm2021-hub.example.org/new-item</link>"
            '<guid isPermaLink="false">https://hlm2021-hub.example.org/?p=9999</guid>'
            "<description>More news.</description></item>"
        )
        feed.write_text(
            feed.read_text(encoding="utf-8").replace("<item>", item + "<item>", 1), encoding="utf-8"
        )
        pull_feeds(sched_site)
        busy = occ.get(sched_site.store, "busy-week")
        assert jobs.fire(busy.id).startswith("queued")
        assert recorder.calls == [busy.id]
    finally:
        jobs.bind(None)


def test_a_digest_counts_items_that_arrived_before_it_fell_due(sched_site: Site, recorder: Recorder) -> None:
    """Fired a little after its due time, a digest still finds the items of the week before it.

    The window runs from the previous digest's due time to this one's, not to the moment it fires:
    measured to `now`, the occurrence being fired would count as its own previous digest.
    """
    from newsletter import jobs
    from newsletter.feeds.pull import pull_feeds
    from newsletter.schedule.occurrences import create_adhoc, mark

    pull_feeds(sched_site)  # the first pull marks what the feeds hold as seen
    due = datetime.now(UTC) + timedelta(minutes=1)
    campaign = (
        "  - id: weekly\n    template: digest\n    audience: {lists: [members]}\n"
        f"    trigger: {{at: '{due:%Y-%m-%dT%H:%M:%S}', timezone: UTC, only_if_new_items: true}}\n"
    )
    write_schedules(sched_site, HEAD + campaign)
    schedules = load_schedules(sched_site)
    previous = create_adhoc(sched_site.store, schedules, "weekly", now=due - timedelta(days=7))
    mark(sched_site.store, previous, "sent", "", due - timedelta(days=7))
    feed = sched_site.root / "feeds" / "hub-en.xml"
    item = (
        "<item><title>The zero draft is out</title><link>https://hlm2021-hub.example.org/zero-draft</link>"
        '<guid isPermaLink="false">https://hlm2021-hub.example.org/?p=9998</guid></item>'
    )
    feed.write_text(feed.read_text(encoding="utf-8").replace("<item>", item + "<item>", 1), encoding="utf-8")
    pull_feeds(sched_site)  # the item arrives before the digest is due
    sync.reconcile(sched_site, datetime.now(UTC), schedules)
    row = occ.get(sched_site.store, "weekly")
    late = due.replace(microsecond=0) + timedelta(seconds=5)
    jobs.bind(jobs.Binding(sched_site, lambda: schedules, clock=lambda: late, enqueue=recorder))
    try:
        assert jobs.fire(row.id) == "queued 0"
    finally:
        jobs.bind(None)
    assert recorder.calls == [row.id]
