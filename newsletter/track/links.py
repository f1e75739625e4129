"""Stored links, cached: a link row never changes once render has written it, so every instance may
keep it in memory for the life of the process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from newsletter.store import Store
from newsletter.store.tables import links

CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Link:
    id: int
    url: str
    label: str
    occurrence_id: int | None
    campaign: str
    language: str


class LinkCache:
    """link id -> Link, read from the store on a miss."""

    def __init__(self, store: Store):
        self.store = store
        self._links: dict[int, Link] = {}
        self.counts: dict[tuple[int, str], int] = {}  # (occurrence, language) -> links in the message
        self._lock = threading.Lock()

    def cached(self, link_id: int) -> Link | None:
        """The link if it is in memory (no I/O: safe on the event loop)."""
        return self._links.get(link_id)

    def get(self, link_id: int) -> Link | None:
        cached = self._links.get(link_id)
        if cached is not None:
            return cached
        with self.store.read() as conn:
            row = conn.execute(select(links).where(links.c.id == link_id)).first()
            rows: Sequence[Any] = [row] if row is not None else []
            if row is not None and row.occurrence_id is not None:
                # The other links of the same message will be clicked too: fetch them in the same go.
                rows = conn.execute(select(links).where(links.c.occurrence_id == row.occurrence_id)).all()
        found = {r.id: Link(r.id, r.url, r.label, r.occurrence_id, r.campaign, r.language) for r in rows}
        with self._lock:
            if len(self._links) >= CACHE_SIZE:
                self._links.clear()  # crude, but links of live campaigns refill in one query each
            self._links.update(found)  # an unknown id may be written later: its absence is not kept
        return found.get(link_id)
