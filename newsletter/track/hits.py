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
from newsletter.track.links import LinkCache
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
    # Recent clicks per send as (link id, time), in two generations handed down about once a
    # BURST_WINDOW: together they always hold the last window, and forgetting the older one costs
    # nothing per click. Plain tuples: a classify.Click is built only for a send that may burst.
    recent: dict[int, list[tuple[int, datetime]]] = field(default_factory=dict)
    older: dict[int, list[tuple[int, datetime]]] = field(default_factory=dict)
    swept: datetime = datetime.min.replace(tzinfo=UTC)


def write_hits(store: Store, memory: Memory, policy: Policy, hits: Sequence[RawHit]) -> int:
    """Classify and store `hits` (RawHit tuples, or Hits) in one transaction; returns the number of
    events written."""
    if not hits:
        return 0
    dialect = store.dialect
    times, stored_times = epoch_times([h[6] for h in hits], dialect)
    with store.write() as conn:
        ledger = _ledger(conn, {h[1] for h in hits if h[1] is not None}, memory.sends)
        burst = _bursts(conn, hits, times, ledger, memory)
        links_get = memory.links.get
        ips: dict[str, str] = {}  # as received -> as stored, for this batch
        individual = policy.track_individual
        sqlite = dialect == "sqlite"
        rows = []
        for (kind, send_id, link_id, method, agent, ip, _), at, stored_at in zip(
            hits, times, stored_times, strict=True
        ):
            send = ledger.get(send_id) if send_id is not None else None
            link = links_get(link_id) if link_id is not None else None
            if kind == "click":
                machine = classify.bot_click(method, agent, at, send.sent_at if send else None) or (
                    send_id in burst
                )
            else:
                machine = kind == "open" and classify.machine_open(agent, ip)
            stored_ip = ips.get(ip)
            if stored_ip is None:
                stored_ip = ips[ip] = anonymize(ip, policy.ip_privacy, policy.ip_key)
            mine = send if individual else None  # the ledger row, when hits name the subscriber
            of = send if send is not None else link  # both carry occurrence_id, campaign, language
            rows.append(  # in events.HIT_COLUMNS order
                (
                    kind,
                    "redirect" if kind == "click" else "pixel",
                    of.occurrence_id if of is not None else None,
                    mine.id if mine is not None else None,
                    mine.subscriber_id if mine is not None else None,
                    link.id if link else None,
                    of.campaign if of is not None else None,
                    of.language if of is not None else None,
                    link.label if link else None,
                    int(machine) if sqlite else machine,  # an int binds without an adapter lookup
                    agent[:UA_MAX],
                    stored_ip,
                    stored_at,
                )
            )
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


def _bursts(
    conn: Any, hits: Sequence[RawHit], times: Sequence[datetime], ledger: dict[int, Any], memory: Memory
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
    for (kind, send_id, link_id, *_), at in zip(hits, times, strict=True):
        if send_id is None or link_id is None or kind != "click":
            continue
        wanted = fresh.get(send_id)
        if wanted is None:
            send = ledger.get(send_id)
            if send is None:
                continue
            wanted = counts.get((send.occurrence_id, send.language))
            if wanted is None:
                wanted = _links_in_message(conn, send, counts)
            fresh[send_id] = wanted
        if wanted > 1:  # one-link messages cannot burst
            clicks = recent.get(send_id)
            if clicks is None:
                recent[send_id] = [(link_id, at)]
            else:
                clicks.append((link_id, at))
    horizon = newest - 2 * classify.BURST_WINDOW
    # Only a message with at least as many recent clicks, and as many distinct links clicked, as it
    # has links can be a burst: both are checked before any list is built (most sends fail the first).
    older = memory.older
    seen: dict[int, list[tuple[int, datetime]]] = {}
    for s, wanted in fresh.items():
        if wanted < 2:
            continue
        mine, before = recent[s], older.get(s)
        if len(mine) + (len(before) if before else 0) < wanted:
            continue
        clicks = before + mine if before else mine
        if len({link for link, _ in clicks}) >= wanted:
            seen[s] = clicks
    candidates = {s: fresh[s] for s in seen}
    if not candidates:
        return set()
    click = classify.Click
    flagged = classify.burst_sends(
        (click(s, link, at) for s in seen for link, at in seen[s] if at >= horizon), candidates
    )
    if flagged:
        since = min(at for s in flagged for _, at in seen[s] if at >= horizon)
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
