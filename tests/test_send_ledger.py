"""The send ledger on SQLite and PostgreSQL: enqueue, suppression, claims, crashes, doubt."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from newsletter.audience.subscribers import forget, suppress
from newsletter.schedule.load import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.send import ledger
from newsletter.send.engine import deliver, enqueue_occurrence, send_occurrence
from newsletter.send.transports.outbox import OutboxTransport
from newsletter.send.transports.sendgrid import SendGridTransport
from newsletter.store import sendstatus
from newsletter.store.tables import events, occurrences, send_batches, send_plans, sends, subscriptions
from tests.support.send import FaultySendGrid, add_subscribers

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)
DEAD = f"{socket.gethostname()}:999999999"  # a pid that cannot exist on this host


def rows(site: Any, occurrence_id: int) -> list[Any]:
    """The ledger rows as readers see them (status and sent_at through store.sendstatus), and `stored`."""
    own = [c for c in sends.c if c.name not in ("status", "sent_at")]
    with site.store.read() as conn:
        return conn.execute(
            select(
                *own,
                sendstatus.status().label("status"),
                sendstatus.sent_at().label("sent_at"),
                sends.c.status.label("stored"),
            )
            .where(sends.c.occurrence_id == occurrence_id)
            .order_by(sends.c.id)
        ).all()


def status_of(site: Any, occurrence_id: int) -> str:
    with site.store.read() as conn:
        return str(conn.scalar(select(occurrences.c.status).where(occurrences.c.id == occurrence_id)))


def test_enqueue_writes_one_row_per_person_once_in_their_language(send_site: Any) -> None:
    add_subscribers(
        send_site.store, 10, lists_=("members", "key-populations"), languages=("en", "fr", "es"), now=NOW
    )
    occ = create_adhoc(send_site.store, load_schedules(send_site), "two-lists", now=NOW)
    assert enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site)) == 10
    assert enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site)) == 10  # idempotent
    found = rows(send_site, occ)
    assert len(found) == 10  # on two lists, one copy each
    assert len({r.email for r in found}) == 10
    # campaign in en+fr: Spanish readers fall back to the default language
    assert {r.email: r.language for r in found}["person2@example.org"] == "en"
    assert {r.language for r in found} == {"en", "fr"}
    assert all(r.status == "pending" for r in found)


def test_an_interrupted_enqueue_resumes_at_its_cursor(send_site: Any) -> None:
    ids = add_subscribers(send_site.store, 6, now=NOW)
    occ = create_adhoc(send_site.store, load_schedules(send_site), "weekly-digest", now=NOW)
    enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site))
    with send_site.store.write() as conn:  # as if it had stopped after the first three
        conn.execute(sends.delete().where(sends.c.subscriber_id > ids[2]))
        conn.execute(update(send_plans).values(status="enqueuing", last_subscriber_id=ids[2], total=3))
    assert enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site)) == 6
    assert sorted(r.subscriber_id for r in rows(send_site, occ)) == ids


def test_suppressed_addresses_are_recorded_but_never_queued(send_site: Any) -> None:
    add_subscribers(send_site.store, 4, now=NOW)
    with send_site.store.write() as conn:
        suppress(conn, "person1@example.org", "bounced")
    occ = create_adhoc(send_site.store, load_schedules(send_site), "weekly-digest", now=NOW)
    assert enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site)) == 3
    by_email = {r.email: r for r in rows(send_site, occ)}
    assert by_email["person1@example.org"].status == "suppressed"


def test_suppression_is_checked_again_when_a_batch_is_claimed(send_site: Any) -> None:
    ids = add_subscribers(send_site.store, 5, now=NOW)
    occ = create_adhoc(send_site.store, load_schedules(send_site), "weekly-digest", now=NOW)
    enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site))
    with send_site.store.write() as conn:
        conn.execute(
            update(subscriptions).where(subscriptions.c.subscriber_id == ids[0]).values(status="unsubscribed")
        )
        suppress(conn, "person1@example.org", "complained")
    forget(send_site.store, "person2@example.org")
    tally = send_occurrence(send_site, occ, NOW, load_schedules(send_site))
    assert tally.sent == 2 and tally.suppressed == 3
    statuses = sorted(r.status for r in rows(send_site, occ))
    assert statuses == ["sent", "sent", "suppressed", "suppressed", "suppressed"]
    names = sorted(p.name for p in send_site.outbox_dir.iterdir())
    assert len(names) == 2
    mailed = b"".join(p.read_bytes() for p in send_site.outbox_dir.iterdir())
    assert b"person0@" not in mailed and b"person1@" not in mailed and b"person2@" not in mailed
    assert status_of(send_site, occ) == "sent"


def test_local_hour_sends_wait_for_their_hour(send_site: Any) -> None:
    add_subscribers(send_site.store, 1, now=NOW, prefix="tokyo", timezone="Asia/Tokyo")
    add_subscribers(send_site.store, 1, now=NOW, prefix="ny", timezone="America/New_York")
    occ = create_adhoc(send_site.store, load_schedules(send_site), "morning-digest", now=NOW)
    enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site))
    when = {r.email: r.not_before for r in rows(send_site, occ)}
    assert when["tokyo0@example.org"] == datetime(2021, 6, 7, 0, 0, tzinfo=UTC)  # 09:00 JST, already past
    assert when["ny0@example.org"] == datetime(2021, 6, 7, 13, 0, tzinfo=UTC)  # 09:00 EDT
    claim = ledger.claim_batch(send_site.store, transport="outbox", worker="w", limit=10, now=NOW, lease=60)
    assert claim is not None and [r.email for r in claim.rows] == ["tokyo0@example.org"]
    assert (
        ledger.claim_batch(send_site.store, transport="outbox", worker="w", limit=10, now=NOW, lease=60)
        is None
    )
    later = ledger.claim_batch(
        send_site.store, transport="outbox", worker="w", limit=10, now=NOW + timedelta(hours=5), lease=60
    )
    assert later is not None and [r.email for r in later.rows] == ["ny0@example.org"]


def _claimed(site: Any, transport: str, n: int = 4, worker: str = DEAD) -> tuple[int, ledger.Claim]:
    add_subscribers(site.store, n, languages=("en",), now=NOW)
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    enqueue_occurrence(site, occ, NOW, load_schedules(site))
    claim = ledger.claim_batch(site.store, transport=transport, worker=worker, limit=100, now=NOW, lease=300)
    assert claim is not None and len(claim.rows) == n
    return occ, claim


def test_a_dead_workers_claimed_batch_goes_back_to_pending(send_site: Any) -> None:
    occ, claim = _claimed(send_site, "sendgrid")
    assert ledger.recover_abandoned(send_site.store, NOW) == 1
    assert {r.status for r in rows(send_site, occ)} == {"pending"}


def test_a_dead_workers_sendgrid_request_is_in_doubt_not_resent(send_site: Any) -> None:
    occ, claim = _claimed(send_site, "sendgrid")
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300)
    ledger.recover_abandoned(send_site.store, NOW)
    assert {r.status for r in rows(send_site, occ)} == {"in_doubt"}
    assert (
        ledger.claim_batch(send_site.store, transport="sendgrid", worker="w", limit=100, now=NOW, lease=60)
        is None
    )
    assert [b["messages"] for b in ledger.list_in_doubt(send_site.store)] == [4]
    assert status_of(send_site, occ) == "sending"


def test_a_dead_workers_outbox_batch_is_handed_over_again(send_site: Any) -> None:
    occ, claim = _claimed(send_site, "outbox")
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300)
    ledger.recover_abandoned(send_site.store, NOW)
    assert {r.status for r in rows(send_site, occ)} == {"pending"}


def test_a_dead_smtp_worker_leaves_only_its_one_message_in_doubt(send_site: Any) -> None:
    occ, claim = _claimed(send_site, "smtp")
    first, second = claim.rows[0].send_id, claim.rows[1].send_id
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300, [first])
    ledger.mark_sent(send_site.store, claim.batch_id, {first: "250 ok"}, NOW, final=False)
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300, [second])
    ledger.recover_abandoned(send_site.store, NOW)
    assert [r.status for r in rows(send_site, occ)] == ["sent", "in_doubt", "pending", "pending"]


@pytest.mark.parametrize("transport", ["smtp", "sendgrid"])
def test_an_occurrence_waiting_on_doubt_says_so_in_its_transports_terms(
    send_site: Any, transport: str
) -> None:
    occ, claim = _claimed(send_site, transport, n=2)
    first, second = claim.rows[0].send_id, claim.rows[1].send_id
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300, [first])
    ledger.mark_sent(send_site.store, claim.batch_id, {first: "250 ok"}, NOW, final=False)
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300, [second])
    ledger.close_batch(send_site.store, claim.batch_id, "in_doubt", "lost", NOW, send_ids=[second])
    with send_site.store.read() as conn:
        reason = str(conn.scalar(select(occurrences.c.reason).where(occurrences.c.id == occ)))
    assert "newsletter in-doubt --batch ID --decide sent|resend|failed" in reason
    assert "--resolve" not in reason
    if transport == "smtp":
        assert "SMTP connection was lost during DATA" in reason and "SendGrid" not in reason
    else:
        assert "waiting for SendGrid events" in reason


def test_a_live_worker_keeps_its_batch_until_the_lease_runs_out(send_site: Any) -> None:
    occ, claim = _claimed(send_site, "sendgrid", worker="another-host:1")
    assert ledger.recover_abandoned(send_site.store, NOW) == 0
    assert ledger.recover_abandoned(send_site.store, NOW + timedelta(seconds=301)) == 1
    assert {r.status for r in rows(send_site, occ)} == {"pending"}


def test_in_doubt_batches_are_settled_by_sendgrid_events(send_site: Any) -> None:
    occ, claim = _claimed(send_site, "sendgrid")
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300)
    ledger.close_batch(send_site.store, claim.batch_id, "in_doubt", "timeout", NOW)
    assert ledger.resolve_in_doubt(send_site.store, NOW) == 0  # no event yet: stays in doubt
    with send_site.store.write() as conn:
        conn.execute(
            events.insert().values(kind="processed", source="sendgrid", send_id=claim.rows[2].send_id, at=NOW)
        )
    assert ledger.resolve_in_doubt(send_site.store, NOW) == 4  # one request, accepted whole
    assert {r.status for r in rows(send_site, occ)} == {"sent"}
    assert status_of(send_site, occ) == "sent"
    with send_site.store.read() as conn:
        assert (
            conn.scalar(select(send_batches.c.decided_by).where(send_batches.c.id == claim.batch_id))
            == "events"
        )


@pytest.mark.parametrize("decision,expected", [("sent", "sent"), ("failed", "failed"), ("resend", "pending")])
def test_an_operator_decides_an_in_doubt_batch(send_site: Any, decision: str, expected: str) -> None:
    occ, claim = _claimed(send_site, "sendgrid")
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 300)
    ledger.close_batch(send_site.store, claim.batch_id, "in_doubt", "timeout", NOW)
    assert ledger.decide_in_doubt(send_site.store, claim.batch_id, decision, now=NOW) == 4
    assert {r.status for r in rows(send_site, occ)} == {expected}
    assert ledger.list_in_doubt(send_site.store) == []
    if decision == "resend":
        again = ledger.claim_batch(
            send_site.store, transport="sendgrid", worker="w", limit=100, now=NOW, lease=60
        )
        assert again is not None and len(again.rows) == 4
    else:
        assert status_of(send_site, occ) == "sent"


def test_refused_credentials_pause_the_occurrence(send_site: Any, faulty_sendgrid: FaultySendGrid) -> None:
    from newsletter.errors import TransportAuthError
    from newsletter.send.engine import PreparedCache

    occ, claim = _claimed(send_site, "sendgrid", worker="w")
    faulty_sendgrid.script = [("status", 401, {}, {"errors": [{"message": "bad key"}]})]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5)
    prepared = PreparedCache(send_site, lambda: load_schedules(send_site)).get(occ, "en", NOW)
    with pytest.raises(TransportAuthError):
        deliver(send_site.store, transport, claim, prepared, lease=60)
    assert {r.status for r in rows(send_site, occ)} == {"pending"}
    with send_site.store.read() as conn:
        occurrence = conn.execute(select(occurrences).where(occurrences.c.id == occ)).one()
    assert occurrence.status == "paused" and "bad key" in occurrence.reason


def test_a_400_fails_the_batch_with_sendgrids_text(send_site: Any, faulty_sendgrid: FaultySendGrid) -> None:
    from newsletter.send.engine import PreparedCache

    occ, claim = _claimed(send_site, "sendgrid", worker="w")
    faulty_sendgrid.script = [
        ("status", 400, {}, {"errors": [{"message": "Invalid type", "field": "subject"}]})
    ]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5)
    tally = deliver(
        send_site.store,
        transport,
        claim,
        PreparedCache(send_site, lambda: load_schedules(send_site)).get(occ, "en", NOW),
        lease=60,
    )
    assert tally.failed == 4
    found = rows(send_site, occ)
    assert {r.status for r in found} == {"failed"}
    assert "subject: Invalid type" in found[0].error
    assert status_of(send_site, occ) == "sent"  # nothing left open; the failures are in the ledger


def test_claims_never_overlap(send_site: Any) -> None:
    add_subscribers(send_site.store, 25, languages=("en",), now=NOW)
    occ = create_adhoc(send_site.store, load_schedules(send_site), "weekly-digest", now=NOW)
    enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site))
    seen: list[int] = []
    while claim := ledger.claim_batch(
        send_site.store, transport="outbox", worker="w", limit=10, now=NOW, lease=60
    ):
        seen.extend(r.send_id for r in claim.rows)
    assert len(seen) == 25 == len(set(seen))
    with send_site.store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(send_batches)) == 3


def test_outbox_transport_is_idempotent_across_a_retried_batch(send_site: Any) -> None:
    from newsletter.send.engine import PreparedCache, recipients_of

    occ, claim = _claimed(send_site, "outbox", worker="w")
    prepared = PreparedCache(send_site, lambda: load_schedules(send_site)).get(occ, "en", NOW)
    outbox = OutboxTransport(send_site.outbox_dir)
    outbox.send_batch(prepared, recipients_of(claim)[:2])  # a first attempt cut short by a crash
    deliver(send_site.store, outbox, claim, prepared, lease=60)
    assert len(list(send_site.outbox_dir.iterdir())) == 4
    assert {r.status for r in rows(send_site, occ)} == {"sent"}


def test_a_worker_whose_batch_was_taken_over_sends_nothing(send_site: Any) -> None:
    from newsletter.send.engine import PreparedCache

    occ, claim = _claimed(send_site, "outbox", worker="slow-host:1")
    ledger.recover_abandoned(send_site.store, NOW + timedelta(seconds=301))  # its lease ran out
    outbox = OutboxTransport(send_site.outbox_dir)
    tally = deliver(
        send_site.store,
        outbox,
        claim,
        PreparedCache(send_site, lambda: load_schedules(send_site)).get(occ, "en", NOW),
        lease=60,
    )
    assert tally.sent == 0 and "taken over" in tally.errors[0]
    assert not send_site.outbox_dir.exists() or not any(send_site.outbox_dir.iterdir())
    assert {r.status for r in rows(send_site, occ)} == {"pending"}


def _queued(site: Any, n: int) -> int:
    add_subscribers(site.store, n, languages=("en",), now=NOW)
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    enqueue_occurrence(site, occ, NOW, load_schedules(site))
    return occ


def test_a_batch_claimed_ahead_goes_back_when_the_drain_stops(send_site: Any) -> None:
    from newsletter.send.engine import PreparedCache, drain
    from newsletter.send.transports.memory import MemoryTransport

    occ = _queued(send_site, 12)
    transport = MemoryTransport()
    transport.batch_size = 4
    cache = PreparedCache(send_site, lambda: load_schedules(send_site))
    tally = drain(send_site, transport, cache, worker="w", stop=lambda: len(transport.messages) >= 4)
    assert tally.sent == 4 and len(transport.messages) == 4
    assert ledger.counts(send_site.store, occ) == {"sent": 4, "pending": 8}  # nothing left claimed
    with send_site.store.read() as conn:
        released = conn.execute(select(send_batches.c.status, send_batches.c.error)).all()
    if send_site.store.is_sqlite:  # claims are not taken ahead on SQLite (engine.drain says why)
        assert sorted(status for status, _ in released) == ["sent"]
    else:
        assert sorted(released) == [("released", "claimed ahead, not sent"), ("sent", None)]
    drain(send_site, transport, cache, worker="w")
    assert ledger.counts(send_site.store, occ) == {"sent": 12}
    assert sorted(m.send_id for m in transport.messages) == [r.id for r in rows(send_site, occ)]


def test_a_failed_ledger_write_stops_the_drain_and_leaves_the_batch_in_flight(
    send_site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.send.engine import PreparedCache, drain
    from newsletter.send.transports.outbox import OutboxTransport

    occ = _queued(send_site, 6)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(ledger, "mark_sent", broken)
    cache = PreparedCache(send_site, lambda: load_schedules(send_site))
    with pytest.raises(RuntimeError, match="database is gone"):
        drain(send_site, OutboxTransport(send_site.outbox_dir), cache, worker="w")
    # Handed over but not recorded: in flight, for recovery to judge (the outbox is idempotent).
    with send_site.store.read() as conn:
        assert set(conn.scalars(select(send_batches.c.status))) == {"in_flight"}
    assert ledger.counts(send_site.store, occ) == {"claimed": 6}


def test_a_whole_batch_is_settled_with_its_refused_rows_failed(send_site: Any) -> None:
    occ = _queued(send_site, 5)
    claim = ledger.claim_batch(send_site.store, transport="sendgrid", worker="w", limit=10, now=NOW, lease=60)
    assert claim is not None
    ids = [r.send_id for r in claim.rows]
    assert ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 60) == 5
    ledger.mark_sent(
        send_site.store,
        claim.batch_id,
        dict.fromkeys(ids[1:], "sg-1"),
        NOW,
        provider_id="sg-1",
        failed={ids[0]: "invalid address"},
        whole=True,
    )
    got = {r.id: (r.status, r.stored, r.error, r.sent_at) for r in rows(send_site, occ)}
    # Settled on the batch row: the sent rows were not written again, and read as sent, at its time.
    assert got == {
        ids[0]: ("failed", "failed", "invalid address", None),
        **{i: ("sent", "claimed", None, NOW) for i in ids[1:]},
    }
    with send_site.store.read() as conn:
        batch = conn.execute(select(send_batches).where(send_batches.c.id == claim.batch_id)).one()
    assert (batch.status, batch.provider_id) == ("sent", "sg-1")
    assert ledger.counts(send_site.store, occ) == {"failed": 1, "sent": 4}
    assert status_of(send_site, occ) == "sent"


def test_a_claim_honours_an_address_suppressed_after_the_enqueue_by_an_earlier_transaction(
    send_site: Any,
) -> None:
    """An import that began before the enqueue and committed after it stamps its suppressions with
    its start: the claim still finds them (ledger.SUPPRESSION_MARGIN)."""
    from newsletter.audience.subscribers import email_hash
    from newsletter.store.tables import suppressions

    occ = _queued(send_site, 3)
    with send_site.store.read() as conn:
        planned = conn.scalar(select(send_plans.c.created_at).where(send_plans.c.occurrence_id == occ))
    with send_site.store.write() as conn:
        conn.execute(
            suppressions.insert().values(
                email_hash=email_hash("person1@example.org"),
                reason="complained",
                created_at=planned - timedelta(hours=2),
            )
        )
    tally = send_occurrence(send_site, occ, NOW, load_schedules(send_site))
    assert tally.sent == 2 and tally.suppressed == 1
    assert {r.email: r.status for r in rows(send_site, occ)}["person1@example.org"] == "suppressed"


def test_a_batch_settled_whole_reads_as_sent_to_every_reader(send_site: Any) -> None:
    """One SendGrid message id for the batch: only the batch row is written, and the ledger counts,
    the report (live and kept), a person's data, the segments and the click path all read its rows as
    sent, at the batch's time."""
    from newsletter.audience.subscribers import show
    from newsletter.report.figures import sends_by
    from newsletter.report.rollup import keep_finished_sends
    from newsletter.track.sends import ledger_rows

    occ = _queued(send_site, 4)
    claim = ledger.claim_batch(send_site.store, transport="sendgrid", worker="w", limit=10, now=NOW, lease=60)
    assert claim is not None
    ids = [r.send_id for r in claim.rows]
    assert ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 60) == 4
    later = NOW + timedelta(seconds=5)
    ledger.mark_sent(send_site.store, claim.batch_id, dict.fromkeys(ids, "sg-9"), later, whole=True)
    assert {r.stored for r in rows(send_site, occ)} == {"claimed"}  # not written again
    assert ledger.counts(send_site.store, occ) == {"sent": 4}
    assert status_of(send_site, occ) == "sent"  # no row open, so the occurrence is over
    assert sends_by(send_site.store, [occ]) == [(occ, "en", "sent", 4)]  # live counts
    assert keep_finished_sends(send_site.store) == 1
    assert sends_by(send_site.store, [occ]) == [(occ, "en", "sent", 4)]  # kept counts
    mine = show(send_site.store, "person0@example.org")
    assert mine is not None
    assert [(s["status"], s["sent_at"]) for s in mine["sends"]] == [("sent", later.isoformat())]
    with send_site.store.read() as conn:
        assert conn.scalar(select(func.count()).where(sendstatus.is_sent())) == 4  # as segments ask
        found = ledger_rows(conn, ids, sent_at=True)
    assert {row.sent_at for row in found.values()} == {later}
    with send_site.store.read() as conn:
        batch = conn.execute(select(send_batches).where(send_batches.c.id == claim.batch_id)).one()
    assert (batch.status, batch.provider_id) == ("sent", "sg-9")
