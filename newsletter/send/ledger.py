"""The send ledger: a row per (occurrence, subscriber) written before anything leaves, and its states.

    pending ──claim──> claimed ──> in_flight ──> sent | failed
       ^                 │             │
       └──── release ────┘             └──> in_doubt ──(events | operator)──> sent | pending | failed
    suppressed: found unsubscribed, bounced, complained or forgotten when claimed

Workers claim a batch of one (occurrence, language) at a time. On PostgreSQL the claim is
`SELECT ... FOR UPDATE SKIP LOCKED`, so several workers on several hosts never take the same rows; on
SQLite the store's single write path serialises claims. A claimed batch carries a lease; a batch whose
worker died (its pid is gone on this host, or its lease ran out) is recovered according to what its
transport may already have done (see `recover_abandoned`), and never by resending blindly.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, update

from newsletter.audience.segments import still_registered
from newsletter.audience.subscribers import email_hash
from newsletter.errors import InputError
from newsletter.store import Store, now_utc
from newsletter.store.tables import (
    events,
    lists,
    occurrences,
    send_batches,
    send_plans,
    sends,
    subscribers,
    subscriptions,
    suppressions,
)

# How a transport's batches are recovered after a crash (the transports' `mode`).
MODES = {"sendgrid": "batch", "smtp": "message", "outbox": "idempotent"}
OPEN = ("pending", "claimed", "in_flight", "in_doubt")
DECISIONS = ("sent", "resend", "failed")


@dataclass(frozen=True)
class Row:
    """One recipient of a claimed batch."""

    send_id: int
    email: str
    name: str
    language: str
    subscriber_id: int | None
    timezone: str


@dataclass(frozen=True)
class Claim:
    batch_id: int
    occurrence_id: int
    language: str
    transport: str
    rows: tuple[Row, ...]
    suppressed: int = 0


def worker_name(name: str | None = None) -> str:
    """`host:pid[:name]`: lets a restarted worker see at once that a batch's owner is dead."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{name}" if name else base


def _owner_dead(worker: str) -> bool:
    host, _, rest = worker.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# ---------------------------------------------------------------- claiming


def claim_batch(
    store: Store,
    *,
    transport: str,
    worker: str,
    limit: int,
    now: datetime,
    lease: float,
    occurrence_id: int | None = None,
) -> Claim | None:
    """Claim up to `limit` due pending rows of one (occurrence, language); None when nothing is due."""
    due = and_(
        sends.c.status == "pending",
        or_(sends.c.not_before.is_(None), sends.c.not_before <= now),
    )
    ready = (
        select(sends.c.id, sends.c.occurrence_id, sends.c.language)
        .join(send_plans, send_plans.c.occurrence_id == sends.c.occurrence_id)
        .join(occurrences, occurrences.c.id == sends.c.occurrence_id)
        .where(due, send_plans.c.status == "ready", occurrences.c.status == "sending")
        .where(sends.c.occurrence_id == occurrence_id if occurrence_id is not None else and_(True))
        .order_by(sends.c.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=sends)
    )
    with store.write() as conn:
        first = conn.execute(ready).first()
        if first is None:
            return None
        ids = conn.scalars(
            select(sends.c.id)
            .where(due, sends.c.occurrence_id == first.occurrence_id, sends.c.language == first.language)
            .order_by(sends.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        batch_id = conn.execute(
            send_batches.insert().values(
                occurrence_id=first.occurrence_id,
                language=first.language,
                transport=transport,
                status="claimed",
                worker=worker,
                lease_until=now + timedelta(seconds=lease),
                attempts=1,
                size=len(ids),
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(update(sends).where(sends.c.id.in_(ids)).values(status="claimed", batch_id=batch_id))
        rows, suppressed = _unsuppressed(conn, first.occurrence_id, ids, now)
        if not rows:
            conn.execute(
                update(send_batches).where(send_batches.c.id == batch_id).values(status="sent", size=0)
            )
            maybe_finish(conn, first.occurrence_id, now)
        return Claim(batch_id, first.occurrence_id, first.language, transport, tuple(rows), suppressed)


def _unsuppressed(
    conn: Connection, occurrence_id: int, ids: Sequence[int], now: datetime
) -> tuple[list[Row], int]:
    """The claimed rows still allowed to be mailed; the others are marked `suppressed` with the reason.

    Rechecked at claim time because a send at a local hour may be claimed a day after it was queued,
    and people unsubscribe, bounce or ask to be forgotten meanwhile.
    """
    plan = conn.execute(
        select(send_plans.c.lists, send_plans.c.registered_for).where(
            send_plans.c.occurrence_id == occurrence_id
        )
    ).first()
    plan_lists, plan_registered = (plan.lists, plan.registered_for) if plan else ([], [])
    found = conn.execute(
        select(
            sends.c.id,
            sends.c.email,
            sends.c.language,
            sends.c.subscriber_id,
            subscribers.c.name,
            subscribers.c.timezone,
        )
        .outerjoin(subscribers, subscribers.c.id == sends.c.subscriber_id)
        .where(sends.c.id.in_(ids))
        .order_by(sends.c.id)
    ).all()
    hashes = {email_hash(r.email): r.id for r in found}
    blocked: dict[int, str] = {}
    for h in conn.scalars(
        select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(list(hashes)))
    ):
        blocked[hashes[h]] = "suppressed address"
    people = [r.subscriber_id for r in found if r.subscriber_id]
    subscribed = (
        set(
            conn.scalars(
                select(subscriptions.c.subscriber_id)
                .join(lists, lists.c.id == subscriptions.c.list_id)
                .where(
                    subscriptions.c.subscriber_id.in_(people),
                    subscriptions.c.status == "confirmed",
                    lists.c.slug.in_(list(plan_lists or [])),
                    lists.c.active.is_(True),
                )
            )
        )
        if plan_lists
        else None  # registrants, or those reminded of an event: no list to be on
    )
    registered = still_registered(conn, people, plan_registered) if plan_registered else None
    rows = []
    for r in found:
        if r.subscriber_id is None:
            blocked.setdefault(r.id, "subscriber forgotten")
        elif subscribed is not None and r.subscriber_id not in subscribed:
            blocked.setdefault(r.id, "no longer subscribed to the campaign's lists")
        elif registered is not None and r.subscriber_id not in registered:
            blocked.setdefault(r.id, "no longer registered for the event")
        if r.id not in blocked:
            rows.append(Row(r.id, r.email, r.name or "", r.language, r.subscriber_id, r.timezone or "UTC"))
    for reason in set(blocked.values()):
        conn.execute(
            update(sends)
            .where(sends.c.id.in_([i for i, why in blocked.items() if why == reason]))
            .values(status="suppressed", error=reason, batch_id=None)
        )
    return rows, len(blocked)


# ---------------------------------------------------------------- marking


def _rows(batch_id: int, send_ids: Iterable[int] | None) -> Any:
    where = sends.c.batch_id == batch_id
    return where if send_ids is None else and_(where, sends.c.id.in_(list(send_ids)))


def mark_in_flight(
    store: Store, batch_id: int, now: datetime, lease: float, send_ids: Iterable[int] | None = None
) -> int:
    """Record that the batch (or these of its rows) is being handed over; renew the lease.

    Returns the rows moved to in_flight: fewer than asked means another worker took the batch over
    (our lease ran out), and the caller must not hand those rows to the transport.
    """
    with store.write() as conn:
        ours = conn.execute(
            update(send_batches)
            .where(send_batches.c.id == batch_id, send_batches.c.status.in_(("claimed", "in_flight")))
            .values(status="in_flight", lease_until=now + timedelta(seconds=lease), updated_at=now)
        ).rowcount
        if not ours:
            return 0
        return int(
            conn.execute(
                update(sends)
                .where(_rows(batch_id, send_ids), sends.c.status == "claimed")
                .values(status="in_flight")
            ).rowcount
        )


def mark_sent(
    store: Store,
    batch_id: int,
    message_ids: dict[int, str],
    now: datetime,
    *,
    provider_id: str | None = None,
    failed: dict[int, str] | None = None,
    final: bool = True,
) -> None:
    """Rows handed over (with the provider's ids) and rows refused; `final` closes the batch."""
    with store.write() as conn:
        distinct = set(message_ids.values())
        if len(distinct) == 1:
            conn.execute(
                update(sends)
                .where(_rows(batch_id, message_ids), sends.c.status.in_(("claimed", "in_flight")))
                .values(status="sent", provider_message_id=distinct.pop() or None, sent_at=now)
            )
        elif message_ids:
            conn.execute(
                update(sends)
                # (no IN here: executemany cannot expand a list parameter)
                .where(
                    sends.c.id == bindparam("sid"),
                    or_(sends.c.status == "claimed", sends.c.status == "in_flight"),
                )
                .values(status="sent", provider_message_id=bindparam("mid"), sent_at=now),
                [{"sid": send_id, "mid": (mid or "")[:200] or None} for send_id, mid in message_ids.items()],
            )
        for send_id, error in (failed or {}).items():
            conn.execute(update(sends).where(sends.c.id == send_id).values(status="failed", error=error))
        values: dict[str, Any] = {"updated_at": now}
        if provider_id:
            values["provider_id"] = provider_id[:200]
        if final:
            values["status"] = "sent"
        conn.execute(update(send_batches).where(send_batches.c.id == batch_id).values(**values))
        if final:
            maybe_finish(conn, _occurrence_of(conn, batch_id), now)


def close_batch(
    store: Store,
    batch_id: int,
    status: str,
    error: str,
    now: datetime,
    *,
    send_ids: Iterable[int] | None = None,
    provider_id: str | None = None,
    final: bool = True,
) -> None:
    """End the batch (or these rows) as `failed`, `in_doubt` or `released` (rows back to pending)."""
    row_values: dict[str, Any] = (
        {"status": "pending", "batch_id": None}
        if status == "released"
        else {"status": status, "error": error}
    )
    with store.write() as conn:
        conn.execute(
            update(sends)
            .where(_rows(batch_id, send_ids), sends.c.status.in_(("claimed", "in_flight")))
            .values(**row_values)
        )
        values: dict[str, Any] = {"error": error, "updated_at": now}
        if final:
            values["status"] = status
        if provider_id:
            values["provider_id"] = provider_id[:200]
        conn.execute(update(send_batches).where(send_batches.c.id == batch_id).values(**values))
        if final:
            maybe_finish(conn, _occurrence_of(conn, batch_id), now)


def pause_occurrence(store: Store, occurrence_id: int, reason: str, now: datetime) -> None:
    with store.write() as conn:
        conn.execute(
            update(occurrences)
            .where(occurrences.c.id == occurrence_id)
            .values(status="paused", reason=reason, updated_at=now)
        )


def resume_occurrence(store: Store, occurrence_id: int, now: datetime) -> bool:
    """Let a paused occurrence whose ledger is already written go on sending where it stopped."""
    planned = exists().where(send_plans.c.occurrence_id == occurrences.c.id)
    with store.write() as conn:
        return bool(
            conn.execute(
                update(occurrences)
                .where(occurrences.c.id == occurrence_id, occurrences.c.status == "paused", planned)
                .values(status="sending", reason="resumed by hand", updated_at=now)
            ).rowcount
        )


def _occurrence_of(conn: Connection, batch_id: int) -> int:
    return int(conn.scalar(select(send_batches.c.occurrence_id).where(send_batches.c.id == batch_id)) or 0)


def maybe_finish(conn: Connection, occurrence_id: int, now: datetime) -> None:
    """Mark the occurrence `sent` once its plan is complete and no row is open any more."""
    plan = conn.execute(select(send_plans).where(send_plans.c.occurrence_id == occurrence_id)).first()
    if plan is None or plan.status != "ready":
        return
    counts: dict[str, int] = dict(
        conn.execute(  # type: ignore[arg-type]
            select(sends.c.status, func.count())
            .where(sends.c.occurrence_id == occurrence_id, sends.c.status.in_(OPEN))
            .group_by(sends.c.status)
        ).all()
    )
    if not counts:
        conn.execute(
            update(send_plans)
            .where(send_plans.c.occurrence_id == occurrence_id)
            .values(status="done", updated_at=now)
        )
        conn.execute(
            update(occurrences)
            .where(occurrences.c.id == occurrence_id, occurrences.c.status == "sending")
            .values(status="sent", reason="", updated_at=now)
        )
    elif set(counts) == {"in_doubt"}:
        conn.execute(
            update(occurrences)
            .where(occurrences.c.id == occurrence_id, occurrences.c.status == "sending")
            .values(
                reason=f"{counts['in_doubt']} messages in doubt: waiting for SendGrid events or an operator "
                "decision (newsletter send --resolve)",
                updated_at=now,
            )
        )


# ---------------------------------------------------------------- crashes and doubt


def recover_abandoned(store: Store, now: datetime) -> int:
    """Take over batches whose worker died; returns how many.

    A batch nothing of which was handed over goes back to pending. For the rest it depends on the
    transport: the outbox is idempotent (a second hand-over finds the file), so its rows go back to
    pending; a SendGrid request may have been accepted, so its rows are in doubt; SMTP marks each
    message, so only the one message that was in flight is in doubt and the untouched ones go back.
    """
    with store.write() as conn:
        candidates = conn.execute(
            select(send_batches.c.id, send_batches.c.status, send_batches.c.transport, send_batches.c.worker)
            .where(
                send_batches.c.status.in_(("claimed", "in_flight")),
            )
            .with_for_update(skip_locked=True)
        ).all()
        taken = 0
        for b in candidates:
            lease = conn.scalar(select(send_batches.c.lease_until).where(send_batches.c.id == b.id))
            if not ((lease is not None and lease < now) or _owner_dead(b.worker)):
                continue
            taken += 1
            mode = MODES.get(b.transport, "batch")
            note = f"worker {b.worker} stopped"
            back = ("claimed",) if mode != "idempotent" else ("claimed", "in_flight")
            conn.execute(
                update(sends)
                .where(sends.c.batch_id == b.id, sends.c.status.in_(back))
                .values(status="pending", batch_id=None)
            )
            doubted = conn.execute(
                update(sends)
                .where(sends.c.batch_id == b.id, sends.c.status == "in_flight")
                .values(status="in_doubt", error=f"{note} while handing over")
            ).rowcount
            status = "in_doubt" if doubted else "released"
            conn.execute(
                update(send_batches)
                .where(send_batches.c.id == b.id)
                .values(status=status, error=note, updated_at=now)
            )
        return taken


def resolve_in_doubt(store: Store, now: datetime) -> int:
    """Settle in-doubt rows that tracking events prove were accepted; returns rows settled.

    Any event carrying the send id (processed, delivered, bounce, open, ...) proves acceptance. A
    SendGrid request is accepted or refused as a whole, so one proven row settles its whole batch.
    """
    proven = exists().where(events.c.send_id == sends.c.id)
    with store.write() as conn:
        batch_ids = set(
            conn.scalars(
                select(sends.c.batch_id)
                .join(send_batches, send_batches.c.id == sends.c.batch_id)
                .where(sends.c.status == "in_doubt", proven, send_batches.c.transport == "sendgrid")
            )
        )
        settled = conn.execute(
            update(sends)
            .where(
                sends.c.status == "in_doubt",
                or_(proven, sends.c.batch_id.in_(batch_ids)),
            )
            .values(status="sent", sent_at=func.coalesce(sends.c.sent_at, now), error="settled by events")
        ).rowcount
        if settled:
            _close_doubted(conn, now, "events")
        return int(settled)


def decide_in_doubt(
    store: Store, batch_id: int, decision: str, *, now: datetime | None = None, by: str = "operator"
) -> int:
    """An operator's decision on an in-doubt batch: `sent` (it went), `resend`, or `failed` (drop it)."""
    if decision not in DECISIONS:
        raise InputError(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
    now = now or now_utc()
    choices: dict[str, dict[str, Any]] = {
        "sent": {"status": "sent", "sent_at": now, "error": f"marked sent by {by}"},
        "resend": {"status": "pending", "batch_id": None, "error": f"resent by decision of {by}"},
        "failed": {"status": "failed", "error": f"dropped by decision of {by}"},
    }
    values = choices[decision]
    with store.write() as conn:
        changed = conn.execute(
            update(sends).where(sends.c.batch_id == batch_id, sends.c.status == "in_doubt").values(**values)
        ).rowcount
        if decision == "resend":
            # batch_id was cleared above, so the batch is closed by hand.
            conn.execute(
                update(send_batches)
                .where(send_batches.c.id == batch_id, send_batches.c.status == "in_doubt")
                .values(status="released", decided_by=f"{by}: resend", updated_at=now)
            )
        _close_doubted(conn, now, f"{by}: {decision}")
        return int(changed)


def _close_doubted(conn: Connection, now: datetime, by: str) -> None:
    left = exists().where(sends.c.batch_id == send_batches.c.id, sends.c.status == "in_doubt")
    done = conn.execute(
        select(send_batches.c.id, send_batches.c.occurrence_id).where(
            send_batches.c.status == "in_doubt", ~left
        )
    ).all()
    for b in done:
        conn.execute(
            update(send_batches)
            .where(send_batches.c.id == b.id)
            .values(status="sent", decided_by=by, updated_at=now)
        )
    for occurrence_id in {b.occurrence_id for b in done}:
        maybe_finish(conn, occurrence_id, now)


def list_in_doubt(store: Store) -> list[dict[str, Any]]:
    """In-doubt batches for the dashboard and the CLI: id, occurrence, campaign, language, rows, error."""
    with store.read() as conn:
        rows = conn.execute(
            select(
                send_batches.c.id,
                send_batches.c.occurrence_id,
                occurrences.c.campaign,
                send_batches.c.language,
                send_batches.c.transport,
                send_batches.c.provider_id,
                send_batches.c.error,
                send_batches.c.updated_at,
                func.count(sends.c.id).label("messages"),
            )
            .join(sends, sends.c.batch_id == send_batches.c.id)
            .join(occurrences, occurrences.c.id == send_batches.c.occurrence_id)
            .where(sends.c.status == "in_doubt")
            .group_by(send_batches.c.id, occurrences.c.campaign)
            .order_by(send_batches.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


DONE = ("sent", "failed", "suppressed")  # ledger rows that will not change any more


def progress(store: Store) -> list[dict[str, Any]]:
    """Occurrences being sent, earliest first, with their ledger rows by status and how far along."""
    with store.read() as conn:
        rows = conn.execute(
            select(occurrences).where(occurrences.c.status == "sending").order_by(occurrences.c.due_at)
        ).all()
        counts = conn.execute(
            select(sends.c.occurrence_id, sends.c.status, func.count())
            .where(sends.c.occurrence_id.in_([r.id for r in rows]))
            .group_by(sends.c.occurrence_id, sends.c.status)
        ).all()
    out = []
    for row in rows:
        by_status = {status: int(n) for occ, status, n in counts if occ == row.id}
        total = sum(by_status.values())
        done = sum(by_status.get(s, 0) for s in DONE)
        out.append(
            {
                "id": row.id,
                "campaign": row.campaign,
                "due_at": row.due_at,
                "statuses": by_status,
                "total": total,
                "done": done,
                "progress": done / total if total else 0.0,
            }
        )
    return out


def counts(store: Store, occurrence_id: int) -> dict[str, int]:
    """Ledger rows of an occurrence per status."""
    with store.read() as conn:
        found = conn.execute(
            select(sends.c.status, func.count())
            .where(sends.c.occurrence_id == occurrence_id)
            .group_by(sends.c.status)
        ).all()
    return {status: int(n) for status, n in found}
