"""The track stage's store paths on both backends: ledger lookups, and the webhook's dedupe when two
posts of the same events race (SendGrid retries for 24 hours; several app instances may take them)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from newsletter.site import Site
from newsletter.store import now_utc
from newsletter.store.tables import events, subscriptions
from newsletter.track import webhook
from newsletter.track.events import COLUMNS, db_time, insert_events
from newsletter.track.sends import ledger_rows
from tests.support.track import seed_message


def test_ledger_rows_are_the_sends_asked_for_with_an_aware_sent_at(site: Site) -> None:
    send = seed_message(site.store)
    other = seed_message(site.store, email="ben@example.org", language="es")
    with site.store.read() as conn:
        found = ledger_rows(conn, [send["send_id"], other["send_id"], 10**9], sent_at=True)
        plain = ledger_rows(conn, {send["send_id"]})
    assert set(found) == {send["send_id"], other["send_id"]}
    row = found[send["send_id"]]
    assert (row.occurrence_id, row.subscriber_id, row.language, row.email, row.campaign) == (
        send["occurrence_id"],
        send["subscriber_id"],
        "fr",
        "ana@example.org",
        "declaration-call",
    )
    assert found[other["send_id"]].language == "es"
    assert row.sent_at is not None and row.sent_at.utcoffset() == timedelta(0)
    assert abs((now_utc() - row.sent_at) - timedelta(hours=1)) < timedelta(minutes=1)
    assert plain[send["send_id"]].sent_at is None


def _event(send: dict[str, Any], n: int, kind: str = "delivered") -> dict[str, Any]:
    return {
        "email": "ana@example.org",
        "event": kind,
        "timestamp": int(time.time()),
        "sg_event_id": f"race-{n}",
        "send_id": str(send["send_id"]),
    }


def _stored_by_another_instance(send: dict[str, Any], n: int, dialect: str) -> tuple[Any, ...]:
    values = dict.fromkeys(COLUMNS)
    values.update(
        kind="delivered",
        source="sendgrid",
        occurrence_id=send["occurrence_id"],
        send_id=send["send_id"],
        machine=False,
        user_agent="",
        ip="",
        sg_event_id=f"race-{n}",
        at=db_time(now_utc(), dialect),
    )
    return tuple(values[c] for c in COLUMNS)


def _waiting_on_a_lock(site: Site) -> bool:
    with site.store.read() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE 'COPY events%%'"
            ).scalar()
        )


def test_a_post_racing_another_instance_stores_and_acts_on_each_event_once(site: Site, backend: str) -> None:
    """Instance A has stored events 0-4 and not committed yet when instance B's post of events 0-7
    arrives: B's dedupe query cannot see them, so on PostgreSQL its COPY waits on A's rows and, once A
    commits, hits the unique index; B then stores only 5-7 and acts only on those (the complaint in
    event 2 is A's to act on, the unsubscribe in event 6 is B's)."""
    send = seed_message(site.store)
    posted = [_event(send, n, kind) for n, kind in enumerate(["delivered"] * 8)]
    posted[2]["event"], posted[6]["event"] = "spamreport", "unsubscribe"
    result: dict[str, webhook.Ingested] = {}

    def instance_b() -> None:
        result["b"] = webhook.ingest(
            site.store, posted, ip_privacy="truncate", ip_key=b"k", soft_bounce_limit=3
        )

    with site.store.write() as conn:  # instance A, mid-transaction
        insert_events(conn, [_stored_by_another_instance(send, n, conn.dialect.name) for n in range(5)])
        b = threading.Thread(target=instance_b)
        b.start()
        if backend == "postgresql":
            deadline = time.monotonic() + 10
            while not _waiting_on_a_lock(site):
                assert time.monotonic() < deadline, "instance B never waited on A's uncommitted rows"
                time.sleep(0.05)
        else:  # B is inside the write path, waiting for the lock A holds
            deadline = time.monotonic() + 10
            while not _blocked_in_write(b):
                assert time.monotonic() < deadline, "instance B never reached the write lock"
                time.sleep(0.01)
        assert "b" not in result
    b.join(30)
    assert (result["b"].stored, result["b"].duplicates, result["b"].suppressed) == (3, 5, 1)
    with site.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == 8
        assert conn.scalar(select(func.count(func.distinct(events.c.sg_event_id)))) == 8
        assert conn.scalar(select(subscriptions.c.status)) == "unsubscribed"


def _blocked_in_write(thread: threading.Thread) -> bool:
    """Whether `thread` is waiting inside Store.write (the process lock or BEGIN IMMEDIATE)."""
    import sys

    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "write" and frame.f_code.co_filename.endswith("store/__init__.py"):
            return True
        frame = frame.f_back
    return False


def test_queued_hits_leave_the_garbage_collectors_watch(site: Site) -> None:
    """A hit waits in the buffer until the next flush. As a plain tuple of strings and numbers the
    collector stops tracking it at its first pass, so thousands of waiting hits never swell the
    older generations (whose full collections paused every request for tens of ms under load)."""
    import gc

    from starlette.requests import Request

    from newsletter.web.public import Public

    public = Public(site)
    public.hits.interval = 3600.0  # no flush before the look below, however slow the machine is
    scope = {
        "type": "http",
        "method": "GET",
        "headers": [(b"user-agent", b"Mozilla/5.0 Firefox/120")],
        "client": ("203.0.113.9", 5000),
    }
    public._hit(Request(scope), "open", 1, None)
    public._hit(Request(scope), "open", 2, None)
    gc.collect()
    queued = list(public.hits._pending)
    assert len(queued) == 2 and not any(gc.is_tracked(hit) for hit in queued)
    assert queued[0][4] is queued[1][4]  # one shared user-agent string: pickled once per batch
    public.hits.stop()
    with site.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == 2


def test_a_failed_batch_waits_in_front_and_the_oldest_go_past_the_limit(site: Site, monkeypatch: Any) -> None:
    """While the store refuses writes, hits stay queued in their order ahead of newer ones; past
    MAX_PENDING the oldest are dropped and counted; once the store is back, the rest are stored."""
    from newsletter.track import buffer
    from newsletter.track.hits import Policy
    from newsletter.track.links import LinkCache

    monkeypatch.setattr(buffer, "MAX_PENDING", 3)
    hits = buffer.HitBuffer(site.store, LinkCache(site.store), Policy("none", b"", False), 3600.0)
    with site.store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE events RENAME TO events_away")  # a real failure to write
    for n in range(2):
        hits.add(("open", None, None, "GET", "Mozilla/5.0", "", 1_700_000_000.0 + n))
    assert hits.flush() == 0 and hits.pending == 2 and hits.dropped == 0
    for n in range(2, 4):
        hits.add(("open", None, None, "GET", "Mozilla/5.0", "", 1_700_000_000.0 + n))
    assert hits.flush() == 0 and hits.pending == 3 and hits.dropped == 1
    assert [h[6] for h in hits._pending] == [1_700_000_001.0, 1_700_000_002.0, 1_700_000_003.0]
    with site.store.write() as conn:
        conn.exec_driver_sql("ALTER TABLE events_away RENAME TO events")
    assert hits.flush() == 3 and hits.pending == 0
    hits.stop()
    with site.store.read() as conn:
        stored = [row.at.timestamp() for row in conn.execute(select(events.c.at).order_by(events.c.id))]
    assert stored == [1_700_000_001.0, 1_700_000_002.0, 1_700_000_003.0]
