"""What the scheduler runs. Jobs are stored as references ("newsletter.jobs:fire") with ids.

APScheduler's job store keeps only the reference and the occurrence id, so the running site is bound
here by the runner; there is one scheduler per database (see runner.SchedulerLock), hence one binding.
The binding holds the schedule in force (the last valid one), which the send stage is handed: an
occurrence that falls due while a file is being edited goes out as it was planned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsletter.campaigns import Schedules
from newsletter.feeds.pull import pull_feeds as pull
from newsletter.schedule.inputs import new_items_for
from newsletter.schedule.occurrences import claim, mark
from newsletter.send.enqueue import enqueue_occurrence
from newsletter.store import now_utc

log = logging.getLogger("newsletter.schedule")

FIRE = "newsletter.jobs:fire"
Enqueue = Callable[[Any, int, datetime, Schedules], int]


@dataclass
class Binding:
    site: Any
    schedules: Callable[[], Schedules]  # the schedule in force (LiveSchedules), read at each firing
    clock: Callable[[], datetime] = now_utc
    enqueue: Enqueue | None = None


_bound: Binding | None = None


def bind(binding: Binding | None) -> None:
    global _bound
    _bound = binding


def bound() -> Binding:
    if _bound is None:
        raise RuntimeError("no running scheduler: jobs.bind() was not called")
    return _bound


def fire(occurrence_id: int) -> str:
    """Claim a due occurrence (at most once) and hand it to the send engine; returns what happened."""
    b = bound()
    now = b.clock()
    store = b.site.store
    row, why_not = claim(store, occurrence_id, now)
    if row is None:
        log.info("occurrence %s not sent: %s", occurrence_id, why_not)
        return why_not
    schedules = b.schedules()
    campaign = schedules.campaigns.get(row.campaign)
    if campaign is not None and campaign.trigger.only_if_new_items:
        count, since = new_items_for(store, campaign, row.due_at)
        if count == 0:
            reason = f"skipped: no new items since {since:%Y-%m-%d %H:%M} UTC"
            mark(store, row.id, "skipped", reason, now)
            log.info("occurrence %s %s", row.key, reason)
            return reason
    try:
        enqueue = b.enqueue or enqueue_occurrence
        queued = enqueue(b.site, row.id, now, schedules)
    except Exception as exc:  # the send stage failed: record it, the scheduler goes on
        reason = f"failed to enqueue: {type(exc).__name__}: {exc}"
        mark(store, row.id, "failed", reason, now)
        log.exception("occurrence %s %s", row.key, reason)
        return reason
    log.info("occurrence %s fired: %s messages queued", row.key, queued)
    return f"queued {queued}"


def finish_enqueue(occurrence_id: int) -> str:
    """Hand a claimed occurrence to the send engine again after a crash (enqueue is resumable)."""
    b = bound()
    now = b.clock()
    try:
        queued = (b.enqueue or enqueue_occurrence)(b.site, occurrence_id, now, b.schedules())
    except Exception as exc:
        reason = f"failed to enqueue: {type(exc).__name__}: {exc}"
        mark(b.site.store, occurrence_id, "failed", reason, now)
        log.exception("occurrence %s %s", occurrence_id, reason)
        return reason
    log.info("occurrence %s: interrupted hand-over finished, %s messages queued", occurrence_id, queued)
    return f"queued {queued}"


def pull_feeds() -> None:
    """The interval feed pull of `newsletter run`, so digests find new items by themselves."""
    try:
        results = pull(bound().site)
        log.info("feeds pulled: %s", ", ".join(f"{r.name} {r.status}" for r in results) or "no feeds")
    except Exception:  # a failing pull must not stop the scheduler; the next one retries
        log.exception("feed pull failed")
