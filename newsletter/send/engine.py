"""Drain the ledger through a transport: deliver claimed batches, send an occurrence, send one message.

Each step is recorded in the ledger before the next one happens (see ledger.py for the states); the
rows themselves are written first by `enqueue_occurrence` (enqueue.py, re-exported here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from newsletter.campaigns import Schedules
from newsletter.errors import BatchRejected, InDoubtError, SendError, TransientError, TransportAuthError
from newsletter.render.assemble import prepare_occurrence
from newsletter.send import ledger
from newsletter.send.bounce_policy import Policy, record_replies
from newsletter.send.enqueue import enqueue_occurrence
from newsletter.send.quota import Limiter, shared_limiter
from newsletter.send.transports.base import Transport
from newsletter.store import Store, now_utc

__all__ = [
    "Tally",
    "PreparedCache",
    "enqueue_occurrence",
    "deliver",
    "drain",
    "drain_parallel",
    "send_occurrence",
    "send_single",
]

Progress = Callable[[int, int], None]  # (messages done, total)
DEFER_RETRY = timedelta(minutes=30)  # a recipient the server deferred (4xx at RCPT) is tried again after


@dataclass
class Tally:
    """What a drain did."""

    sent: int = 0
    failed: int = 0
    in_doubt: int = 0
    suppressed: int = 0
    requeued: int = 0
    deferred: int = 0  # recipients the server deferred, tried again after DEFER_RETRY
    batches: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("sent", "failed", "in_doubt", "suppressed", "requeued", "deferred", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


# ---------------------------------------------------------------- deliver


def recipients_of(claim: ledger.Claim) -> list[Any]:
    """The claim's rows as recipients: a `ledger.Row` has `render.Recipient`'s fields, so no copy is made."""
    return list(claim.rows)


def deliver(
    store: Store,
    transport: Transport,
    claim: ledger.Claim,
    prepared: Any,
    *,
    lease: float,
    limiter: Limiter | None = None,
    clock: Callable[[], datetime] = now_utc,
    policy: Policy | None = None,
    settle: Callable[[Callable[[], None]], None] | None = None,
) -> Tally:
    """Hand one claimed batch to the transport, recording each step in the ledger before the next.

    `policy`: what an address refused at RCPT does (bounce_policy.py); None records nothing.
    `settle`: runs the ledger write that records a whole batch's outcome; by default at once, and
    `drain` hands it to a ledger thread, so it overlaps the next batch's hand-over. (Nothing
    depends on it but the batch's own rows: until it commits the batch is in flight, and a crash
    leaves it in doubt, to be settled by the provider's events.)
    """
    run = settle or (lambda write: write())
    tally = Tally(batches=1, suppressed=claim.suppressed)
    recipients = recipients_of(claim)
    if not recipients:
        return tally
    if transport.mode == "message":
        return _deliver_each(
            store, transport, claim, prepared, recipients, lease, limiter, clock, tally, policy
        )
    if limiter is not None:
        limiter.acquire(len(recipients))
    if ledger.mark_in_flight(store, claim.batch_id, clock(), lease) != len(recipients):
        tally.errors.append(f"batch {claim.batch_id} was taken over by another worker; not sent from here")
        return tally
    try:
        result = transport.send_batch(prepared, recipients)
    except TransportAuthError as exc:
        _pause(store, claim, exc, clock())
        tally.requeued += len(recipients)
        tally.errors.append(str(exc))
        raise
    except InDoubtError as exc:
        doubt, provider = str(exc), exc.provider_id
        run(
            lambda: ledger.close_batch(
                store, claim.batch_id, "in_doubt", doubt, clock(), provider_id=provider
            )
        )
        tally.in_doubt += len(recipients)
        tally.errors.append(str(exc))
    except TransientError as exc:
        ledger.close_batch(store, claim.batch_id, "released", str(exc), clock())
        tally.requeued += len(recipients)
        tally.errors.append(str(exc))
    except Exception as exc:
        # BatchRejected (SendGrid's 400 text), or a fault before anything left: the batch fails
        # with the reason; retrying the same request would fail the same way.
        reason = str(exc) if isinstance(exc, BatchRejected) else f"{type(exc).__name__}: {exc}"
        ledger.close_batch(store, claim.batch_id, "failed", reason, clock())
        tally.failed += len(recipients)
        tally.errors.append(reason)
    else:
        whole = len(result.message_ids) + len(result.failed) == len(recipients)
        run(
            lambda: ledger.mark_sent(
                store,
                claim.batch_id,
                result.message_ids,
                clock(),
                provider_id=result.provider_id,
                failed=result.failed,
                whole=whole,
            )
        )
        tally.sent += len(result.message_ids)
        tally.failed += len(result.failed)
    return tally


def _deliver_each(
    store: Store,
    transport: Transport,
    claim: ledger.Claim,
    prepared: Any,
    recipients: list[Any],
    lease: float,
    limiter: Limiter | None,
    clock: Callable[[], datetime],
    tally: Tally,
    policy: Policy | None,
) -> Tally:
    """One message at a time, each marked in flight before and sent after: a crash leaves one in doubt."""
    doubted = False
    for index, recipient in enumerate(recipients):
        if limiter is not None:
            limiter.acquire(1)
        if not ledger.mark_in_flight(store, claim.batch_id, clock(), lease, [recipient.send_id]):
            tally.errors.append(f"batch {claim.batch_id} was taken over by another worker; stopped here")
            return tally
        try:
            result = transport.send_batch(prepared, [recipient])
        except InDoubtError as exc:
            ledger.close_batch(
                store,
                claim.batch_id,
                "in_doubt",
                str(exc),
                clock(),
                send_ids=[recipient.send_id],
                final=False,
            )
            tally.in_doubt += 1
            tally.errors.append(str(exc))
            doubted = True
            continue
        except (TransientError, TransportAuthError) as exc:
            rest = [r.send_id for r in recipients[index:]]
            ledger.close_batch(
                store, claim.batch_id, "released", str(exc), clock(), send_ids=rest, final=False
            )
            _end_batch(store, claim.batch_id, doubted, clock())
            tally.requeued += len(rest)
            tally.errors.append(str(exc))
            if isinstance(exc, TransportAuthError):
                _pause(store, claim, exc, clock())
                raise
            return tally
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            ledger.close_batch(
                store, claim.batch_id, "failed", reason, clock(), send_ids=[recipient.send_id], final=False
            )
            tally.failed += 1
            tally.errors.append(reason)
            continue
        ledger.mark_sent(
            store, claim.batch_id, result.message_ids, clock(), failed=result.failed, final=False
        )
        if result.deferred:
            ledger.retry_later(store, claim.batch_id, result.deferred, clock() + DEFER_RETRY, result.deferred)
            tally.deferred += len(result.deferred)
        if policy is not None and (result.refused_recipients or result.deferred):
            record_replies(store, result, recipient, policy, clock())
        tally.sent += len(result.message_ids)
        tally.failed += len(result.failed)
    _end_batch(store, claim.batch_id, doubted, clock())
    return tally


def _end_batch(store: Store, batch_id: int, doubted: bool, now: datetime) -> None:
    if doubted:
        ledger.close_batch(store, batch_id, "in_doubt", "a message was in doubt", now, send_ids=[])
    else:
        ledger.mark_sent(store, batch_id, {}, now)


def _pause(store: Store, claim: ledger.Claim, exc: Exception, now: datetime) -> None:
    ledger.close_batch(store, claim.batch_id, "released", str(exc), now)
    ledger.pause_occurrence(store, claim.occurrence_id, f"sending paused: {exc}", now)


# ---------------------------------------------------------------- in-process drains


class PreparedCache:
    """Prepared messages per (occurrence, language), rendered once and kept for `max_age`.

    `schedules` gives the schedule in force (a LiveSchedules, or the runner's): read when a message is
    rendered, never re-parsed here.
    """

    def __init__(
        self, site: Any, schedules: Callable[[], Schedules], max_age: timedelta = timedelta(hours=1)
    ):
        self.site = site
        self.schedules = schedules
        self.max_age = max_age
        self._cache: dict[tuple[int, str], tuple[datetime, Any]] = {}

    def get(self, occurrence_id: int, language: str, now: datetime) -> Any:
        key = (occurrence_id, language)
        found = self._cache.get(key)
        if found is None or now - found[0] > self.max_age:
            if len(self._cache) > 64:
                self._cache.clear()
            found = (now, prepare_occurrence(self.site, self.schedules(), occurrence_id, language, now))
            self._cache[key] = found
        return found[1]


def drain(
    site: Any,
    transport: Transport,
    cache: PreparedCache,
    *,
    worker: str,
    occurrence_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Tally:
    """Claim and deliver batches until none is due (or `stop()`); transient failures end the drain.

    The ledger's writes go through ledger threads while this one renders and hands over: on
    PostgreSQL the next batch is claimed, and the last one settled, during the current hand-over, so
    the server works while Python renders. Under a rate limit nothing is claimed ahead, so a claim
    never waits out its lease behind another batch.
    """
    s = site.settings
    # Kept in the store: every worker of this store (and in-process sends) shares one limit.
    limiter = shared_limiter(site.store, transport.name, s["rate_per_second"], s["rate_per_hour"])
    size = transport.batch_size
    if s["rate_per_hour"]:
        size = min(size, s["rate_per_hour"])
    if s["rate_per_second"]:
        # A claim must go out well within its lease, waits for the rate limit included.
        size = min(size, int(s["rate_per_second"] * s["send_lease"] / 2))
    size = max(1, size)
    # Claiming ahead pays where the database works in its own process: PostgreSQL. On SQLite the
    # ledger's writes are mostly Python holding the GIL, and a second thread only adds switching
    # (bench/send.py measured 0.52 -> 0.47 of the transport's rate with it).
    ahead = not (site.store.is_sqlite or s["rate_per_second"] or s["rate_per_hour"])
    policy = Policy.of(s)
    tally = Tally()

    def claim_next() -> ledger.Claim | None:
        return ledger.claim_batch(
            site.store,
            transport=transport.name,
            worker=worker,
            limit=size,
            now=now_utc(),
            lease=s["send_lease"],
            occurrence_id=occurrence_id,
        )

    def release(taken: Future[ledger.Claim | None] | None) -> None:
        # Claimed ahead and not handed over: back to pending, for a later run or another worker
        # (a claimed batch was never in flight, so this is always safe).
        found = taken.result() if taken is not None else None
        if found is not None and found.rows:
            ledger.close_batch(site.store, found.batch_id, "released", "claimed ahead, not sent", now_utc())

    with _LedgerThread() as writes:
        upcoming: Future[ledger.Claim | None] | None = None
        try:
            while not stop():
                claim = (upcoming or writes.submit(claim_next)).result()
                upcoming = None
                if claim is None:
                    break
                if ahead and claim.rows:
                    upcoming = writes.submit(claim_next)
                now = now_utc()
                try:
                    prepared = cache.get(claim.occurrence_id, claim.language, now) if claim.rows else None
                except Exception as exc:
                    # A template or catalog error does not go away by retrying: pause with the reason.
                    release(upcoming)  # it may be this occurrence's, which is paused now
                    reason = f"cannot render {claim.language}: {type(exc).__name__}: {exc}"
                    _pause(site.store, claim, SendError(reason), now_utc())
                    tally.errors.append(reason)
                    tally.requeued += len(claim.rows)
                    upcoming = None
                    continue
                done = deliver(
                    site.store, transport, claim, prepared, lease=s["send_lease"], limiter=limiter,
                    policy=policy, settle=writes.run if ahead else None,
                )  # fmt: skip
                tally.add(done)
                if progress is not None:
                    progress(done.sent + done.failed + done.in_doubt + done.suppressed + done.deferred)
                if done.requeued:
                    break  # the transport is failing for now: leave the rest to a later run
        finally:
            release(upcoming)
    return tally


class _LedgerThread:
    """The drain's ledger writes off its own thread: claims on one thread, settles on another (each in
    the order given); their errors reach the drain.

    Two, because on PostgreSQL each waits mostly on the server, and one after the other they took
    longer than the hand-over they overlap: a claim of 1,000 rows and the last batch's settle are
    independent transactions, and whichever commits first, the other sees a consistent ledger.
    """

    def __init__(self) -> None:
        self._claims = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-claim")
        self._settles = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-settle")
        self._settling: list[Future[None]] = []

    def submit(self, fn: Callable[[], ledger.Claim | None]) -> Future[ledger.Claim | None]:
        self._check()
        return self._claims.submit(fn)

    def run(self, write: Callable[[], None]) -> None:
        self._check()
        self._settling.append(self._settles.submit(write))

    def _check(self) -> None:
        """Raise the error of a settle that failed (the drain stops there); forget the finished ones."""
        while self._settling and self._settling[0].done():
            self._settling.pop(0).result()

    def __enter__(self) -> _LedgerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self._claims.shutdown(wait=True)
        self._settles.shutdown(wait=True)
        failures = [f.exception() for f in self._settling if f.exception() is not None]
        if failures and exc[0] is None:
            raise failures[0]  # type: ignore[misc]


def drain_parallel(
    site: Any,
    transports: Sequence[Transport],
    cache: PreparedCache,
    *,
    worker: str,
    occurrence_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Tally:
    """`drain` over several transports at once, a thread each (`smtp_connections`): each claims its
    own batches, so no message goes twice; the rate limits are the store's, shared by all of them."""
    if len(transports) == 1:
        return drain(
            site, transports[0], cache, worker=worker, occurrence_id=occurrence_id, progress=progress,
            stop=stop,
        )  # fmt: skip
    lock = threading.Lock()
    tallies: list[Tally] = []
    failures: list[BaseException] = []

    def step(n: int) -> None:
        if progress is not None:
            with lock:
                progress(n)

    def run(index: int, transport: Transport) -> None:
        try:
            done = drain(
                site, transport, cache, worker=f"{worker}:c{index}", occurrence_id=occurrence_id,
                progress=step, stop=stop,
            )  # fmt: skip
            with lock:
                tallies.append(done)
        except BaseException as exc:  # re-raised below, in the caller's thread
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=run, args=(i, t), name=f"send-{i}") for i, t in enumerate(transports)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Tally()
    for done in tallies:
        total.add(done)
    if failures:
        raise failures[0]
    return total


def send_occurrence(
    site: Any,
    occurrence_id: int,
    now: datetime,
    schedules: Schedules,
    transport: Transport | None = None,
    progress: Progress | None = None,
) -> Tally:
    """Enqueue an occurrence and drain it in this process; rows due later stay queued for the worker."""
    from newsletter.send import get_transports

    total = enqueue_occurrence(site, occurrence_id, now, schedules)
    own = transport is None
    transports = [transport] if transport is not None else get_transports(site)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    try:
        return drain_parallel(
            site,
            transports,
            PreparedCache(site, lambda: schedules),
            worker=ledger.worker_name("send"),
            occurrence_id=occurrence_id,
            progress=step,
        )
    except TransportAuthError as exc:
        raise TransportAuthError(
            f"{exc}; occurrence {occurrence_id} is paused, the rest of its recipients still queued: "
            f"`newsletter resume-send {occurrence_id}` once fixed"
        ) from None
    finally:
        if own:
            for each in transports:
                each.close()


def send_single(site: Any, prepared: Any, recipient: Any, transport: Transport | None = None) -> str:
    """Send one message outside any campaign ledger (test copies, confirmations); its message id."""
    from newsletter.send import get_transport

    own = transport is None
    transport = transport or get_transport(site)
    try:
        result = transport.send_batch(prepared, [recipient])
    finally:
        if own:
            transport.close()
    if result.failed or result.deferred:
        raise SendError(f"{recipient.email}: {next(iter({**result.failed, **result.deferred}.values()))}")
    return result.provider_id or next(iter(result.message_ids.values()), "")
