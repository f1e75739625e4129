"""The send ledger: a row per (occurrence, subscriber) written before anything leaves, and its states.

    pending ──claim──> claimed ──> in_flight ──> sent | failed
       ^                 │             │
       └──── release ────┘             └──> in_doubt ──(events | operator)──> sent | pending | failed
    suppressed: found unsubscribed, bounced, complained or forgotten when claimed

A batch handed over whole (SendGrid, the outbox) is in flight as a batch: `send_batches.status`
says so and its rows keep `claimed`, so handing over costs one write, not one per row. When one
message id answers the whole batch (a SendGrid request) it is settled the same way: the batch says
`sent` and its rows still `claimed` are sent with it (readers see that through `store.sendstatus`).
SMTP hands messages over one by one and marks each row.

Workers claim a batch of one (occurrence, language) at a time. On PostgreSQL the claim is
`SELECT ... FOR UPDATE SKIP LOCKED`, so several workers on several hosts never take the same rows; on
SQLite the store's single write path serialises claims. A claimed batch carries a lease; a batch whose
worker died (its pid is gone on this host, or its lease ran out) is recovered according to what its
transport may already have done (see `recover_abandoned`), and never by resending blindly.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, any_, bindparam, exists, func, literal_column, or_, select, update

from newsletter.audience.segments import still_registered
from newsletter.audience.subscribers import email_hash
from newsletter.errors import InputError
from newsletter.store import Store, now_utc, sendstatus
from newsletter.store.idlist import in_ids
from newsletter.store.tables import (
    events,
    lists,
    occurrences,
    send_batches,
    send_plans,
    sends,
    suppressions,
)

# A suppression's time is when its transaction started (an import's is the import's start), and
# workers' clocks may differ a little: claims recheck every suppression from this long before the
# enqueue began, whatever their time says.
SUPPRESSION_MARGIN = timedelta(days=1)

# How a transport's batches are recovered after a crash (the transports' `mode`).
MODES = {"sendgrid": "batch", "smtp": "message", "outbox": "idempotent"}
DECISIONS = ("sent", "resend", "failed")


class Row(NamedTuple):
    """One recipient of a claimed batch (the fields of `render.Recipient`, so transports take it as is)."""

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
#
# A claim is a handful of set operations whatever the batch size: find the next due row, insert the
# batch, move up to `limit` rows to it in one UPDATE that returns them with their subscriber and an
# EXISTS for the subscription, and check them against the suppressions made since the enqueue.


def _sending(conn: Connection, occurrence_id: int | None) -> list[tuple[int, list[str]]]:
    """Occurrences being sent whose ledger is complete, oldest first, with their languages."""
    query = (
        select(occurrences.c.id, occurrences.c.languages)
        .join(send_plans, send_plans.c.occurrence_id == occurrences.c.id)
        .where(occurrences.c.status == "sending", send_plans.c.status == "ready")
        .order_by(occurrences.c.id)
    )
    if occurrence_id is not None:
        query = query.where(occurrences.c.id == occurrence_id)
    found = [(int(i), list(langs or [])) for i, langs in conn.execute(query)]
    if any(not langs for _, langs in found):
        # An occurrence without its languages listed: ask the ledger once (an index-only scan).
        for k, (i, langs) in enumerate(found):
            if not langs:
                found[k] = (
                    i,
                    list(conn.scalars(select(sends.c.language).where(sends.c.occurrence_id == i).distinct())),
                )
    return found


def _due(occurrence_id: int, language: str, now: datetime, dialect: str) -> Any:
    # Every column of ix_sends_claim (occurrence_id, status, language, batch_id, id), then id order:
    # one index range, and rows already sent are never walked past. (A pending row has no batch.)
    if dialect == "postgresql":
        # Status as a range and ordered by (status, id), which only ix_sends_claim yields: on the
        # statistics of the enqueue (everything pending) PostgreSQL otherwise walks the primary key
        # past every row already sent, 60 ms per claim at 30,000 sent, growing with the send.
        status: Any = and_(sends.c.status >= "pending", sends.c.status <= "pending")
    else:
        status = sends.c.status == "pending"
    return and_(
        sends.c.occurrence_id == occurrence_id,
        status,
        sends.c.language == language,
        sends.c.batch_id.is_(None),
        or_(sends.c.not_before.is_(None), sends.c.not_before <= now),
    )


DUE_ORDER = (sends.c.status, sends.c.batch_id, sends.c.id)  # ix_sends_claim's order, within _due


def _next_due(conn: Connection, occurrence_id: int | None, now: datetime) -> tuple[int, str] | None:
    """The (occurrence, language) whose oldest due row is oldest, per occurrence in order."""
    dialect = conn.dialect.name
    for candidate, languages in _sending(conn, occurrence_id):
        # One statement whatever the number of languages: a LIMIT 1 probe of the index per language.
        probes = [
            select(sends.c.id)
            .where(_due(candidate, language, now, dialect))
            .order_by(*DUE_ORDER)
            .limit(1)
            .scalar_subquery()
            .label(f"l{i}")
            for i, language in enumerate(languages)
        ]
        firsts = conn.execute(select(*probes)).one() if probes else ()
        due = [
            (first, language) for first, language in zip(firsts, languages, strict=True) if first is not None
        ]
        if due:
            return candidate, min(due)[1]
    return None


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
    with store.write() as conn:
        found = _next_due(conn, occurrence_id, now)
        if found is None:
            return None
        occurrence, language = found
        batch_id = conn.execute(
            send_batches.insert().values(
                occurrence_id=occurrence,
                language=language,
                transport=transport,
                status="claimed",
                worker=worker,
                lease_until=now + timedelta(seconds=lease),
                attempts=1,
                size=0,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        # SKIP LOCKED: rows another worker is claiming right now are left to it (PostgreSQL).
        picked = (
            select(sends.c.id)
            .where(_due(occurrence, language, now, conn.dialect.name))
            .order_by(*DUE_ORDER)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        chosen: Any
        if store.is_sqlite:
            chosen = sends.c.id.in_(picked.scalar_subquery())
        else:
            # `= ANY(ARRAY(...))`, not `IN (...)`: IN becomes a semi-join that reads the whole table.
            chosen = sends.c.id == any_(func.array(picked.scalar_subquery()))
        rows, suppressed = _claim_rows(conn, occurrence, batch_id, chosen)
        conn.execute(
            update(send_batches)
            .where(send_batches.c.id == batch_id)
            .values(size=len(rows), **({} if rows else {"status": "sent"}))
        )
        if not rows:
            maybe_finish(conn, occurrence, now)
        return Claim(batch_id, occurrence, language, transport, tuple(rows), suppressed)


def _claim_rows(conn: Connection, occurrence_id: int, batch_id: int, chosen: Any) -> tuple[list[Row], int]:
    """Claim the `chosen` rows for the batch; return those still allowed to be mailed, and how many
    were not: those are marked `suppressed` with the reason.

    Rechecked at claim time because a send at a local hour may be claimed a day after it was queued,
    and people unsubscribe, bounce or ask to be forgotten meanwhile. The UPDATE returns each row with
    its subscriber's name and time zone and whether they are still subscribed: one statement, where
    reading the batch back would walk its rows a second time.
    """
    plan = conn.execute(
        select(send_plans.c.lists, send_plans.c.registered_for, send_plans.c.created_at).where(
            send_plans.c.occurrence_id == occurrence_id
        )
    ).first()
    plan_lists, plan_registered = (plan.lists, plan.registered_for) if plan else ([], [])
    # The subqueries of RETURNING are SQL text: SQLAlchemy writes RETURNING's columns unqualified on
    # SQLite, and inside a subquery `subscriber_id` would then name the subquery's own column.
    subscribed = "TRUE"  # registrants, or those reminded of an event: no list to be on
    if plan_lists:
        list_ids = conn.scalars(
            select(lists.c.id).where(lists.c.slug.in_(list(plan_lists)), lists.c.active.is_(True))
        )
        among = ",".join(str(int(i)) for i in list_ids)  # our own integer keys
        subscribed = (
            "EXISTS (SELECT 1 FROM subscriptions l WHERE l.subscriber_id = sends.subscriber_id"
            f" AND l.status = 'confirmed' AND l.list_id IN ({among}))"
            if among
            else "FALSE"
        )
    found = sorted(  # in id order, as enqueued; by a key, which compares plain ints
        conn.execute(
            update(sends)
            .where(chosen)
            .values(status="claimed", batch_id=batch_id)
            .returning(
                sends.c.id,
                sends.c.email,
                sends.c.language,
                sends.c.subscriber_id,
                literal_column("(SELECT p.name FROM subscribers p WHERE p.id = sends.subscriber_id)"),
                literal_column("(SELECT p.timezone FROM subscribers p WHERE p.id = sends.subscriber_id)"),
                literal_column(subscribed),
            )
        ).all(),
        key=itemgetter(0),
    )
    # Plain tuples from here: attribute access on SQLAlchemy rows costs more than the rest of the loop.
    # The enqueue left out every address suppressed before it; only those suppressed since can be in
    # the batch. Usually there are none, and no address needs hashing.
    since = (plan.created_at if plan else now_utc()) - SUPPRESSION_MARGIN
    recent = set(conn.scalars(select(suppressions.c.email_hash).where(suppressions.c.created_at >= since)))
    blocked: dict[int, str] = {}
    if recent:
        for send_id, email, *_ in found:
            if email_hash(email) in recent:
                blocked[send_id] = "suppressed address"
    people = [row[3] for row in found if row[3]]
    registered = still_registered(conn, people, plan_registered) if plan_registered else None
    rows = []
    for send_id, email, language, subscriber_id, name, timezone, ok in found:
        if subscriber_id is None:
            blocked.setdefault(send_id, "subscriber forgotten")
        elif not ok:
            blocked.setdefault(send_id, "no longer subscribed to the campaign's lists")
        elif registered is not None and subscriber_id not in registered:
            blocked.setdefault(send_id, "no longer registered for the event")
        if send_id not in blocked:
            rows.append(Row(send_id, email, name or "", language, subscriber_id, timezone or "UTC"))
    for reason in set(blocked.values()):
        conn.execute(
            update(sends)
            .where(in_ids(conn, sends.c.id, [i for i, why in blocked.items() if why == reason]))
            .values(status="suppressed", error=reason, batch_id=None)
        )
    return rows, len(blocked)


# ---------------------------------------------------------------- marking


def of_batch(batch_id: Any, statuses: Iterable[str], *, batch: Any = None) -> Any:
    """The rows of a batch in these states: one range of ix_sends_claim (occurrence, status, language, batch).

    A batch's rows are one (occurrence, language), so no index of their own is needed: every claim
    and settle would have to keep it up to date. `batch`: the send_batches row (or its columns, in a
    correlated query) when the caller has it; else it is looked up by id.
    """
    b = send_batches.c
    if batch is None:
        occurrence: Any = select(b.occurrence_id).where(b.id == batch_id).scalar_subquery()
        language: Any = select(b.language).where(b.id == batch_id).scalar_subquery()
    else:
        occurrence, language = batch.occurrence_id, batch.language
    return and_(
        sends.c.occurrence_id == occurrence,
        sends.c.status.in_(tuple(statuses)),
        sends.c.language == language,
        sends.c.batch_id == batch_id,
    )


def _rows(conn: Connection, batch_id: int, send_ids: Iterable[int] | None, statuses: Iterable[str]) -> Any:
    where = of_batch(batch_id, statuses)
    return where if send_ids is None else and_(where, in_ids(conn, sends.c.id, send_ids))


def mark_in_flight(
    store: Store, batch_id: int, now: datetime, lease: float, send_ids: Iterable[int] | None = None
) -> int:
    """Record that the batch (or these of its rows) is being handed over; renew the lease.

    A batch handed over whole (`send_ids` None: one SendGrid request, the outbox) is marked on its
    batch row only, one write whatever its size: its rows stay `claimed` and count as in flight
    while the batch is (see `recover_abandoned`). Rows handed over one by one (SMTP) are marked each.

    Returns the rows now in flight: fewer than asked means another worker took the batch over
    (our lease ran out), and the caller must not hand those rows to the transport.
    """
    with store.write() as conn:
        ours = conn.execute(
            update(send_batches)
            .where(send_batches.c.id == batch_id, send_batches.c.status.in_(("claimed", "in_flight")))
            .values(status="in_flight", lease_until=now + timedelta(seconds=lease), updated_at=now)
            .returning(send_batches.c.size)
        ).first()
        if ours is None:
            return 0
        if send_ids is None:
            return int(ours.size)
        return int(
            conn.execute(
                update(sends).where(_rows(conn, batch_id, send_ids, ("claimed",))).values(status="in_flight")
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
    whole: bool = False,
) -> None:
    """Rows handed over (with the provider's ids) and rows refused; `final` closes the batch.

    `whole`: `message_ids` and `failed` together answer every row of the batch. With one message id
    for all (a SendGrid request) and `final`, the batch is settled on its own row: its rows still
    `claimed` are sent with it (store.sendstatus), and only the failed ones are written. Otherwise the
    rows handed over are "the batch's open rows but the failed ones", one range of ix_sends_claim
    (of_batch): an id list would be tested against each row in turn, and PostgreSQL evaluates
    `id = ANY(array)` as a filter, 1,000 x 1,000 comparisons and 60-150 ms per batch of 1,000.
    """
    with store.write() as conn:
        distinct = set(message_ids.values())
        settled_whole = whole and final and len(distinct) == 1
        if failed:
            conn.execute(
                update(sends)
                .where(sends.c.id == bindparam("sid"))
                .values(status="failed", error=bindparam("why")),
                [{"sid": send_id, "why": error} for send_id, error in failed.items()],
            )
        if settled_whole:
            provider_id = provider_id or distinct.pop() or None
        elif len(distinct) == 1:
            conn.execute(
                update(sends)
                .where(_rows(conn, batch_id, None if whole else message_ids, ("claimed", "in_flight")))
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
            .where(_rows(conn, batch_id, send_ids, ("claimed", "in_flight")))
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


def retry_later(
    store: Store, batch_id: int, send_ids: Iterable[int], until: datetime, reasons: dict[int, str]
) -> None:
    """Rows the server deferred (SMTP 4xx at RCPT): back to pending, not claimed before `until`."""
    with store.write() as conn:
        for send_id in send_ids:
            conn.execute(
                update(sends)
                .where(sends.c.id == send_id, sends.c.batch_id == batch_id)
                .where(sends.c.status.in_(("claimed", "in_flight")))
                .values(status="pending", batch_id=None, not_before=until, error=reasons.get(send_id, ""))
            )


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
    # Called after every batch: probe for one pending row (an index seek) and one batch still open,
    # rather than count rows. (Rows of a batch settled whole keep `claimed`: a batch that is over
    # has none in flight.)
    pending = conn.scalar(
        select(sends.c.id).where(sends.c.occurrence_id == occurrence_id, sends.c.status == "pending").limit(1)
    )
    if pending is not None:
        return
    handing = conn.scalar(
        select(send_batches.c.id)
        .where(
            send_batches.c.status.in_(("claimed", "in_flight")),
            send_batches.c.occurrence_id == occurrence_id,
        )
        .limit(1)
    )
    if handing is not None:
        return
    doubted = int(
        conn.scalar(
            select(func.count()).where(sends.c.occurrence_id == occurrence_id, sends.c.status == "in_doubt")
        )
        or 0
    )
    if not doubted:
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
    else:
        conn.execute(
            update(occurrences)
            .where(occurrences.c.id == occurrence_id, occurrences.c.status == "sending")
            .values(reason=_doubt_reason(conn, occurrence_id, doubted), updated_at=now)
        )


def _doubt_reason(conn: Connection, occurrence_id: int, count: int) -> str:
    """What the operator is waiting for, in the terms of the transport that left the messages in doubt."""
    transports = set(
        conn.scalars(
            select(send_batches.c.transport)
            .join(sends, sends.c.batch_id == send_batches.c.id)
            .where(sends.c.occurrence_id == occurrence_id, sends.c.status == "in_doubt")
            .distinct()
        )
    )
    decide = "`newsletter in-doubt` lists them; `newsletter in-doubt --batch ID --decide sent|resend|failed`"
    if transports == {"smtp"}:
        return (
            f"{count} messages in doubt: the SMTP connection was lost during DATA, so the server may have "
            f"accepted them (a bounce for one settles it as sent); look their Message-IDs up in the mail "
            f"server's log, then decide ({decide})"
        )
    return f"{count} messages in doubt: waiting for SendGrid events or an operator decision ({decide})"


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
            select(
                send_batches.c.id,
                send_batches.c.occurrence_id,
                send_batches.c.language,
                send_batches.c.status,
                send_batches.c.transport,
                send_batches.c.worker,
            )
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
            # What may have left: every row of a whole batch in flight (one SendGrid request), or the
            # rows marked in flight one by one (SMTP); never anything for the idempotent outbox.
            back: tuple[str, ...]
            doubt: tuple[str, ...]
            if mode == "idempotent":
                back, doubt = ("claimed", "in_flight"), ()
            elif mode == "batch" and b.status == "in_flight":
                back, doubt = (), ("claimed", "in_flight")
            else:
                back, doubt = ("claimed",), ("in_flight",)
            if back:
                conn.execute(
                    update(sends).where(of_batch(b.id, back, batch=b)).values(status="pending", batch_id=None)
                )
            doubted = (
                doubt
                and conn.execute(
                    update(sends)
                    .where(of_batch(b.id, doubt, batch=b))
                    .values(status="in_doubt", error=f"{note} while handing over")
                ).rowcount
            )
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
            update(sends).where(of_batch(batch_id, ("in_doubt",))).values(**values)
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
    left = exists().where(of_batch(send_batches.c.id, ("in_doubt",), batch=send_batches.c))
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
            sendstatus.counts(sends.c.occurrence_id, where=sends.c.occurrence_id.in_([r.id for r in rows]))
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
        found = conn.execute(sendstatus.counts(where=sends.c.occurrence_id == occurrence_id)).all()
    return {status: int(n) for status, n in found}
