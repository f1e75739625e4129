"""`newsletter worker`: a long-running process that drains the ledger; run several on PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from newsletter.campaigns import Schedules
from newsletter.errors import TransportAuthError
from newsletter.schedule.load import LiveSchedules
from newsletter.send import get_transports, ledger
from newsletter.send.engine import PreparedCache, Tally, drain_parallel
from newsletter.store import now_utc

log = logging.getLogger("newsletter.send.worker")
IDLE_SECONDS = 2.0  # between looks at an empty queue
BACKOFF_SECONDS = 30.0  # after the transport failed transiently


def run_worker(
    site: Any,
    stop: threading.Event,
    *,
    worker_id: str | None = None,
    once: bool = False,
    schedules: Callable[[], Schedules] | None = None,
) -> Tally:
    """Recover dead workers' batches, settle in-doubt ones from events, and send what is due.

    With `once`, returns when nothing is due any more; otherwise runs until `stop` is set. Messages
    are rendered from `schedules` (the runner's, in `newsletter run`); a worker of its own keeps a
    LiveSchedules, reloaded when a source changes and kept as it was while an edit is invalid.
    """
    worker = ledger.worker_name(worker_id)
    live = LiveSchedules(site) if schedules is None else None
    transports = get_transports(site)
    cache = PreparedCache(site, schedules or live or (lambda: Schedules({}, {})))
    total = Tally()
    try:
        while not stop.is_set():
            now = now_utc()
            if live is not None:
                live.refresh()
            taken = ledger.recover_abandoned(site.store, now)
            settled = ledger.resolve_in_doubt(site.store, now)
            if taken or settled:
                log.info(
                    "%s: took over %d abandoned batches, settled %d in-doubt messages", worker, taken, settled
                )
            try:
                done = drain_parallel(site, transports, cache, worker=worker, stop=stop.is_set)
            except TransportAuthError as exc:
                # The occurrence is paused with the message; other occurrences may still go.
                log.error("%s: %s", worker, exc)
                total.errors.append(str(exc))
                continue
            total.add(done)
            if once:
                break
            stop.wait(BACKOFF_SECONDS if done.requeued else IDLE_SECONDS if not done.batches else 0)
    finally:
        for transport in transports:
            transport.close()
    return total
