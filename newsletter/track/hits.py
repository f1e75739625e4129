"""Storing opens, clicks and conversions: `write_hits` stores one batch of hits in one transaction.

Hits reach it from the request path through `buffer.HitBuffer`, in this process or in the writer
process (`writer.py`). Classification (`classify`) and IP anonymisation (`ip`) happen here, off the
request path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select, update

from newsletter.store import Store
from newsletter.store.tables import events, links
from newsletter.track import classify
from newsletter.track.events import epoch_times, insert_hits
from newsletter.track.ip import anonymize
from newsletter.track.links import Link, LinkCache
from newsletter.track.sends import ledger_rows

UA_MAX = 500
LEDGER_CACHE = 200_000  # ledger rows kept in memory


class Hit(NamedTuple):
    kind: str  # open, click, conversion
    send_id: int | None
    link_id: int | None
    method: str
    user_agent: str
    ip: str  # as received; anonymised before it is stored
    at: float  # epoch seconds: cheaper than a datetime to take on the request path and to hand over


# What the request path queues: a plain tuple in Hit's field order. Plain, because the garbage
# collector stops tracking an exact tuple of strings and numbers at its first pass, while a Hit
# (a tuple subclass) would stay tracked, be promoted with every batch waiting in the buffer, and make
# the full collections that walk the whole heap come far more often.
RawHit = tuple[str, int | None, int | None, str, str, str, float]


@dataclass(frozen=True)
class Policy:
    ip_privacy: str
    ip_key: bytes
    track_individual: bool


@dataclass
class Memory:
    """What the writer remembers between batches: links, ledger rows (fixed once sent), recent clicks."""

    links: LinkCache
    sends: dict[int, Any] = field(default_factory=dict)
    # Recent clicks per send, in two generations handed down about once a BURST_WINDOW: together
    # they always hold the last window, and forgetting the older one costs nothing per click.
    recent: dict[int, list[classify.Click]] = field(default_factory=dict)
    older: dict[int, list[classify.Click]] = field(default_factory=dict)
    swept: datetime = datetime.min.replace(tzinfo=UTC)


def write_hits(store: Store, memory: Memory, policy: Policy, hits: Sequence[Hit]) -> int:
    """Classify and store `hits` in one transaction; returns the number of events written."""
    if not hits:
        return 0
    dialect = store.dialect
    times, stored_times = epoch_times([h.at for h in hits], dialect)
    with store.write() as conn:
        ledger = _ledger(conn, {h.send_id for h in hits if h.send_id is not None}, memory.sends)
        burst = _bursts(conn, hits, times, ledger, memory)
        links_get = memory.links.get
        rows = []
        for h, at, stored_at in zip(hits, times, stored_times, strict=True):
            send = ledger.get(h.send_id) if h.send_id is not None else None
            link = links_get(h.link_id) if h.link_id is not None else None
            machine = _machine(h, at, send) or (h.kind == "click" and h.send_id in burst)
            rows.append(_row(h, stored_at, send, link, policy, machine, dialect))
        insert_hits(conn, rows)
    return len(rows)


def _ledger(conn: Any, send_ids: set[int], cache: dict[int, Any]) -> dict[int, Any]:
    """Ledger rows of `send_ids`; rows of sent messages are remembered (they no longer change)."""
    missing = [s for s in send_ids if s not in cache]
    found: dict[int, Any] = {}
    if missing:
        if len(cache) > LEDGER_CACHE:
            cache.clear()
        found = ledger_rows(conn, missing, sent_at=True)
        cache.update({k: row for k, row in found.items() if row.sent_at is not None})
    return {s: found.get(s) or cache[s] for s in send_ids if s in found or s in cache}


def _machine(hit: Hit, at: datetime, send: Any) -> bool:
    if hit.kind == "open":
        return classify.machine_open(hit.user_agent, hit.ip)
    if hit.kind == "click":
        return classify.bot_click(hit.method, hit.user_agent, at, send.sent_at if send else None)
    return False


def _row(
    hit: Hit, stored_at: Any, send: Any, link: Link | None, policy: Policy, machine: bool, dialect: str
) -> tuple[Any, ...]:
    """One events row, in `events.HIT_COLUMNS` order (`stored_at` from `events.epoch_times`)."""
    individual = policy.track_individual and send is not None
    return (
        hit.kind,
        "redirect" if hit.kind == "click" else "pixel",
        send.occurrence_id if send else (link.occurrence_id if link else None),
        send.id if individual else None,
        send.subscriber_id if individual else None,
        link.id if link else None,
        send.campaign if send else (link.campaign if link else None),
        send.language if send else (link.language if link else None),
        link.label if link else None,
        int(machine) if dialect == "sqlite" else machine,  # an int binds without an adapter lookup
        hit.user_agent[:UA_MAX],
        anonymize(hit.ip, policy.ip_privacy, policy.ip_key),
        stored_at,
    )


def _bursts(
    conn: Any, hits: Sequence[Hit], times: Sequence[datetime], ledger: dict[int, Any], memory: Memory
) -> set[int]:
    """Sends whose every link was clicked within a second; their clicks already stored are marked too.

    The window is kept in this writer's memory, so with several instances behind a load balancer a
    burst split across instances goes unseen unless the balancer keeps a client on one instance.
    """
    counts = memory.links.counts
    newest = max(times)
    if newest - memory.swept >= classify.BURST_WINDOW:
        long_ago = newest - memory.swept >= 2 * classify.BURST_WINDOW
        memory.older, memory.recent = ({} if long_ago else memory.recent), {}
        memory.swept = newest
    fresh: dict[int, int] = {}  # send id -> links in its message, for the sends clicked in this batch
    recent = memory.recent
    click = classify.Click
    for h, at in zip(hits, times, strict=True):
        send_id, link_id = h.send_id, h.link_id
        if send_id is None or link_id is None or h.kind != "click":
            continue
        wanted = fresh.get(send_id)
        if wanted is None:
            send = ledger.get(send_id)
            if send is None:
                continue
            wanted = fresh[send_id] = _links_in_message(conn, send, counts)
        if wanted > 1:  # one-link messages cannot burst
            clicks = recent.get(send_id)
            if clicks is None:
                recent[send_id] = [click(send_id, link_id, at)]
            else:
                clicks.append(click(send_id, link_id, at))
    horizon = newest - 2 * classify.BURST_WINDOW
    # Only a message with at least as many recent clicks, and as many distinct links clicked, as it
    # has links can be a burst: both are checked before any list is built (most sends fail the first).
    older = memory.older
    seen: dict[int, list[classify.Click]] = {}
    for s, wanted in fresh.items():
        if wanted < 2:
            continue
        mine, before = recent[s], older.get(s)
        if len(mine) + (len(before) if before else 0) < wanted:
            continue
        clicks = before + mine if before else mine
        if len({c.link_id for c in clicks}) >= wanted:
            seen[s] = clicks
    candidates = {s: fresh[s] for s in seen}
    if not candidates:
        return set()
    flagged = classify.burst_sends((c for s in seen for c in seen[s] if c.at >= horizon), candidates)
    if flagged:
        since = min(c.at for s in flagged for c in seen[s] if c.at >= horizon)
        conn.execute(
            update(events)
            .where(events.c.kind == "click", events.c.send_id.in_(sorted(flagged)), events.c.at >= since)
            .values(machine=True)
        )
    return flagged


def _links_in_message(conn: Any, send: Any, counts: dict[tuple[int, str], int]) -> int:
    """Tracked links in the message of `send` (fixed once rendered, so remembered in `counts`)."""
    key = (send.occurrence_id, send.language)
    if key not in counts:
        if len(counts) > 10_000:
            counts.clear()
        counts[key] = int(
            conn.scalar(
                select(func.count())
                .select_from(links)
                .where(links.c.occurrence_id == key[0], links.c.language == key[1])
            )
            or 0
        )
    return counts[key]
