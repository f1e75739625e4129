"""Rate limits kept in the store, so every worker of one store keeps ONE SendGrid or SMTP limit.

`rate_per_second` is a token bucket (bursts up to one second's worth, a bigger batch goes into debt
and waits it off) and `rate_per_hour` a sliding hour, as before, but their state is a row per
transport (`send_pace`) and the grants of the last hour (`send_grants`), not a process's memory.
A worker asking for n messages reserves their slot in one short write transaction (the `send_pace`
row locked on PostgreSQL, the store's single write path on SQLite) and then sleeps until it, outside
the transaction: workers queue for the limit without polling and without holding locks while they
wait. Times are epoch seconds, compared across processes and hosts: keep the hosts' clocks in NTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, delete, insert, select, update

from newsletter.store import Store
from newsletter.store.tables import send_grants, send_pace

HOUR = 3600.0


class Limiter(Protocol):
    def acquire(self, n: int = 1) -> float:
        """Wait until `n` more messages may go; the seconds waited."""
        ...


class StoreLimiter:
    """Both limits of one transport, shared through the store; 0 means no limit."""

    def __init__(
        self,
        store: Store,
        transport: str,
        per_second: float = 0.0,
        per_hour: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.transport = transport
        self.per_second = float(per_second)
        self.per_hour = int(per_hour)
        self.clock = clock
        self.sleep = sleep

    def acquire(self, n: int = 1) -> float:
        """Reserve the next slot for `n` messages among all workers, then wait for it."""
        now = self.clock()
        wait = max(0.0, self.reserve(n, now) - now)
        if wait:
            self.sleep(wait)
        return wait

    def reserve(self, n: int, now: float) -> float:
        """The time the `n` messages may go, recorded so that every later reservation comes after."""
        with self.store.write() as conn:
            tokens, stamp = self._pace(conn, now)
            start = self._hour(conn, n, now) if self.per_hour else now
            if self.per_second:
                at = max(start, stamp)
                capacity = max(self.per_second, 1.0)
                tokens = min(capacity, tokens + (at - stamp) * self.per_second) - n
                # In debt: go once the bucket has refilled to zero (the rate holds on average).
                start = at + max(0.0, -tokens) / self.per_second
                conn.execute(
                    update(send_pace)
                    .where(send_pace.c.transport == self.transport)
                    .values(tokens=tokens, stamp=at)
                )
            if self.per_hour:
                conn.execute(insert(send_grants).values(transport=self.transport, at=start, messages=n))
            return start

    def _pace(self, conn: Connection, now: float) -> tuple[float, float]:
        """The bucket row, locked for this transaction (created full on first use)."""
        query = select(send_pace.c.tokens, send_pace.c.stamp).where(send_pace.c.transport == self.transport)
        row = conn.execute(query.with_for_update()).first()
        if row is None:
            full = max(self.per_second, 1.0)
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                conn.execute(
                    pg_insert(send_pace)
                    .values(transport=self.transport, tokens=full, stamp=now)
                    .on_conflict_do_nothing()
                )
            else:
                conn.execute(insert(send_pace).values(transport=self.transport, tokens=full, stamp=now))
            row = conn.execute(query.with_for_update()).one()
        return float(row.tokens), float(row.stamp)

    def _hour(self, conn: Connection, n: int, now: float) -> float:
        """The earliest time from `now` at which n more messages fit the sliding hour."""
        mine = send_grants.c.transport == self.transport
        conn.execute(delete(send_grants).where(mine, send_grants.c.at <= now - HOUR))
        grants = conn.execute(
            select(send_grants.c.at, send_grants.c.messages).where(mine).order_by("at")
        ).all()
        total = sum(m for _, m in grants)
        start = now
        for at, messages in grants:
            if total + n <= self.per_hour:
                break
            # Wait until this grant leaves the window. (A batch over the whole limit goes alone.)
            total -= messages
            start = max(start, at + HOUR)
        return start


def shared_limiter(store: Store, transport: str, per_second: float, per_hour: int) -> StoreLimiter | None:
    """The store-wide limiter of a transport, or None when neither limit is set."""
    if not per_second and not per_hour:
        return None
    return StoreLimiter(store, transport, per_second, per_hour)
