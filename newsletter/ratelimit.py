"""Rate limits kept in the store, so that they hold across app instances behind a load balancer.

Each attempt is a row (key, expiry) in the `attempts` table; a key names what is limited and for whom:
"login-email:...", "login-ip:..." for failed dashboard logins, "subscribe-ip:<keyed hash>" for posts
of the public subscribe form. A row counts until it expires, so limits with different windows share
the table; expired rows are dropped as new ones come in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from newsletter.store import Store
from newsletter.store.tables import attempts

KEY_MAX = 400


def exceeded(store: Store, keys: Sequence[str], limit: int, now: datetime) -> bool:
    """Whether any of `keys` has `limit` unexpired attempts (0: no limit)."""
    if limit <= 0:
        return False
    with store.read() as conn:
        for key in keys:
            count = conn.scalar(
                select(func.count()).where(attempts.c.key == key[:KEY_MAX], attempts.c.expires > now)
            )
            if int(count or 0) >= limit:
                return True
    return False


def record(store: Store, keys: Sequence[str], window: timedelta, now: datetime) -> None:
    """Note one attempt under each key, counted for `window`."""
    with store.write() as conn:
        conn.execute(delete(attempts).where(attempts.c.expires <= now))
        conn.execute(attempts.insert(), [{"key": k[:KEY_MAX], "expires": now + window} for k in keys])


def take(store: Store, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """Note one attempt under `key` unless it already has `limit` unexpired ones; whether it was
    allowed. Counted and noted in one write transaction (0: no limit, nothing kept)."""
    if limit <= 0:
        return True
    key = key[:KEY_MAX]
    with store.write() as conn:
        conn.execute(delete(attempts).where(attempts.c.expires <= now))
        count = conn.scalar(select(func.count()).where(attempts.c.key == key))
        if int(count or 0) >= limit:
            return False
        conn.execute(attempts.insert().values(key=key, expires=now + window))
    return True


def clear(store: Store, keys: Sequence[str]) -> None:
    with store.write() as conn:
        conn.execute(delete(attempts).where(attempts.c.key.in_([k[:KEY_MAX] for k in keys])))
