"""What the calendar files published, per UID: the SEQUENCE that goes with each version of an entry.

A new entry starts at SEQUENCE 0; when its times, zone or state (cancelled) differ from what was last
published, the sequence goes up by one, so calendar apps replace the entry they hold. The bump is a
conditional UPDATE on the old fingerprint: two app instances publishing one change raise it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.render.ics import Entry
from newsletter.store import Store
from newsletter.store.tables import calendar_entries


def _row(item: Entry, now: datetime) -> dict[str, Any]:
    return {
        "uid": item.uid,
        "event_id": item.event_id,
        "session": item.session_id,
        "fingerprint": item.fingerprint(),
        "sequence": 0,
        "start": item.start,
        "end": item.end,
        "cancelled": item.cancelled,
        "first_published_at": now,
        "changed_at": now,
    }


def publish(store: Store, items: Sequence[Entry], now: datetime) -> list[tuple[Entry, int]]:
    """Each entry with its SEQUENCE, recording new entries and raising it for changed ones."""
    if not items:
        return []
    with store.read() as conn:
        stored = {
            r.uid: r
            for r in conn.execute(
                select(calendar_entries).where(calendar_entries.c.uid.in_([i.uid for i in items]))
            )
        }
    stale = [i for i in items if i.uid not in stored or stored[i.uid].fingerprint != i.fingerprint()]
    if stale:
        with store.write() as conn:
            for item in stale:
                old = stored.get(item.uid)
                if old is None:
                    dialect_insert = sqlite.insert if store.is_sqlite else postgresql.insert
                    conn.execute(
                        dialect_insert(calendar_entries)
                        .values(_row(item, now))
                        .on_conflict_do_nothing(index_elements=["uid"])
                    )
                else:
                    conn.execute(
                        update(calendar_entries)
                        .where(
                            calendar_entries.c.uid == item.uid,
                            calendar_entries.c.fingerprint == old.fingerprint,
                        )
                        .values(
                            fingerprint=item.fingerprint(),
                            sequence=calendar_entries.c.sequence + 1,
                            start=item.start,
                            end=item.end,
                            cancelled=item.cancelled,
                            changed_at=now,
                        )
                    )
            stored = {
                r.uid: r
                for r in conn.execute(
                    select(calendar_entries).where(calendar_entries.c.uid.in_([i.uid for i in items]))
                )
            }
    return [(i, int(stored[i.uid].sequence)) for i in items]
