"""Fill the ledger for an occurrence: one row per (occurrence, subscriber), before anything leaves.

The audience is streamed with keyset pagination, each page inserted in one transaction together with
the cursor (`send_plans`), so an interrupted enqueue resumes where it stopped and a repeated one adds
nothing; ON CONFLICT DO NOTHING keeps a racing second enqueuer harmless too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from newsletter.audience.segments import for_session
from newsletter.audience.select import stream_audience
from newsletter.audience.subscribers import email_hash
from newsletter.campaigns import Schedules
from newsletter.errors import ConfigError, SendError
from newsletter.render.prepare import resolve_language
from newsletter.schedule.times import recipient_time
from newsletter.send import ledger
from newsletter.store import Store
from newsletter.store.bulk import insert_new
from newsletter.store.idlist import in_keys
from newsletter.store.tables import occurrences, send_plans, sends, suppressions

PAGE = 1000


def enqueue_occurrence(site: Any, occurrence_id: int, now: datetime, schedules: Schedules) -> int:
    """Write the ledger rows of an occurrence's audience (idempotent, resumable); returns rows to send.

    The campaign comes from `schedules`, as loaded by the caller (the schedule in force): an edit
    being made to a file meanwhile does not change or stop what was planned.
    """
    store: Store = site.store
    with store.read() as conn:
        occ = conn.execute(select(occurrences).where(occurrences.c.id == occurrence_id)).first()
    if occ is None:
        raise SendError(f"occurrence {occurrence_id} does not exist")
    campaign = schedules.campaigns.get(occ.campaign)
    if campaign is None:
        raise ConfigError(f"{schedules.source}: campaign {occ.campaign!r} is not defined any more")
    audience = for_session(campaign.audience, occ.event_id, occ.session)
    if campaign.trigger.kind == "on_change" and occ.event_id:
        # A change notice: to those reminded of the time it had before (its new start is not_after).
        target = f"{occ.event_id}/{occ.session}" if occ.session else occ.event_id
        audience = replace(audience, reminded_for=(target,), moved_to=occ.not_after)
    languages = tuple(occ.languages or campaign.languages)
    timed = campaign.local_time is not None or campaign.quiet_hours is not None
    with store.write() as conn:
        plan = conn.execute(select(send_plans).where(send_plans.c.occurrence_id == occurrence_id)).first()
        if plan is None:
            conn.execute(
                send_plans.insert().values(
                    occurrence_id=occurrence_id,
                    status="enqueuing",
                    lists=list(audience.lists),
                    registered_for=list(audience.registered_for),
                    last_subscriber_id=0,
                    total=0,
                    suppressed=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            cursor, selected_at = 0, now
        elif plan.status != "enqueuing":
            return int(plan.total) - int(plan.suppressed)
        else:
            cursor, selected_at = int(plan.last_subscriber_id), plan.created_at
    language_of: dict[str, str] = {}
    timing = (recipient_time, occ, campaign) if timed else None

    def insert(page: list[Any]) -> None:
        _insert_page(store, occurrence_id, page, now, language_of, site, languages, resolve_language, timing)

    # A per-session send to lists goes to the readers of the session's language (as the plan counts
    # it); registrants of the session, or those reminded of it, get it whatever their language.
    readers = (
        set(languages) if occ.session and not (audience.registered_for or audience.reminded_for) else None
    )
    reads: dict[str, str] = {}
    page: list[Any] = []
    if not store.is_sqlite and cursor == 0:
        # The audience query pages through subscribers in id order, probing each one's subscriptions.
        # On statistics from before an import (the usual case: import, then send) PostgreSQL instead
        # sorts the whole audience for every page of 1,000: 46 s for 100,000 people, quadratic in the
        # list. Sampling the tables first (well under a second at a million rows) gives the seek plan.
        with store.write() as conn:
            conn.exec_driver_sql("ANALYZE lists, subscriptions, subscribers")
    # A behavioural segment is taken as of when the plan was made (its first page): a resumed
    # enqueue then selects the same people.
    for person in stream_audience(store, audience, page=PAGE, after_id=cursor, now=selected_at):
        if readers is not None:
            if person.language not in reads:
                reads[person.language] = resolve_language(site, person.language, campaign.languages)
            if reads[person.language] not in readers:
                continue
        page.append(person)
        if len(page) >= PAGE:
            insert(page)
            page = []
    if page:
        insert(page)
    if not store.is_sqlite:
        # The claims that follow join these rows to their subscribers and subscriptions: on statistics
        # from before the audience grew (a fresh import, the first big enqueue) PostgreSQL plans those
        # joins as scans of a whole table per batch. Sampling the three tables costs well under a
        # second, even at a million rows.
        with store.write() as conn:
            conn.exec_driver_sql("ANALYZE sends, subscriptions, subscribers")
    with store.write() as conn:
        by_status: dict[str, int] = dict(
            conn.execute(  # type: ignore[arg-type]
                select(sends.c.status, func.count())
                .where(sends.c.occurrence_id == occurrence_id)
                .group_by(sends.c.status)
            ).all()
        )
        conn.execute(
            update(send_plans)
            .where(send_plans.c.occurrence_id == occurrence_id, send_plans.c.status == "enqueuing")
            .values(
                status="ready",
                total=sum(by_status.values()),
                suppressed=by_status.get("suppressed", 0),
                updated_at=now,
            )
        )
        plan = conn.execute(select(send_plans).where(send_plans.c.occurrence_id == occurrence_id)).one()
        ledger.maybe_finish(conn, occurrence_id, now)  # an empty audience is done at once
    return int(plan.total) - int(plan.suppressed)


def _insert_page(
    store: Store,
    occurrence_id: int,
    page: list[Any],
    now: datetime,
    language_of: dict[str, str],
    site: Any,
    languages: tuple[str, ...],
    resolve_language: Callable[..., str],
    timing: tuple[Callable[..., datetime], Any, Any] | None,
) -> None:
    hashes = [email_hash(p.email) for p in page]
    rows = []
    for p in page:
        if p.language not in language_of:
            language_of[p.language] = resolve_language(site, p.language, languages)
        when = None
        if timing is not None:
            recipient_time, occ, campaign = timing
            when = recipient_time(
                occ.due_at,
                p.timezone or "UTC",
                local_time=campaign.local_time,
                quiet_hours=campaign.quiet_hours,
                not_after=occ.not_after,
            )
        rows.append(
            {
                "occurrence_id": occurrence_id,
                "subscriber_id": p.id,
                "email": p.email,
                "language": language_of[p.language],
                "status": "pending",
                "not_before": when,
                "created_at": now,
            }
        )
    with store.write() as conn:
        blocked = set(
            conn.scalars(
                select(suppressions.c.email_hash).where(in_keys(conn, suppressions.c.email_hash, hashes))
            )
        )
        for row, h in zip(rows, hashes, strict=True):
            if h in blocked:
                row["status"], row["error"] = "suppressed", "suppressed address"
            else:
                row["error"] = None
        # By language, so that a batch (one language) is a few runs of neighbouring rows: a claim then
        # dirties a few pages of the table, not one per row of an audience whose languages interleave.
        rows.sort(key=lambda row: row["language"])
        # ON CONFLICT DO NOTHING: a second enqueuer racing on PostgreSQL adds nothing twice.
        insert_new(conn, sends, rows, ("occurrence_id", "subscriber_id"))
        conn.execute(
            update(send_plans)
            .where(send_plans.c.occurrence_id == occurrence_id)
            .values(last_subscriber_id=page[-1].id, updated_at=now)
        )
