"""A transport that keeps every message in memory: for tests, dry runs and trying a site out.

It keeps the contract of the others (`tests/test_transport_contract.py` runs on all of them) and is
idempotent like the outbox: handing a send id over twice keeps one message.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from newsletter.send.transports.base import BatchResult, Mode


@dataclass(frozen=True)
class Kept:
    """One message as it would have left: who it was for and its bytes."""

    send_id: int
    to: str
    data: bytes


class MemoryTransport:
    """Keeps each message in `messages`, in the order they were handed over."""

    name = "memory"
    mode: Mode = "idempotent"
    batch_size = 500

    def __init__(self) -> None:
        self.messages: list[Kept] = []
        self._by_send: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def send_batch(self, prepared: Any, recipients: Sequence[Any]) -> BatchResult:
        result = BatchResult()
        date = datetime.now(UTC)
        with self._lock:
            for r in recipients:
                known = self._by_send.get(r.send_id) if r.send_id else None
                if known is None:
                    known = f"memory-{next(self._ids)}"
                    self.messages.append(Kept(r.send_id, r.email, prepared.mime(r, date)))
                    if r.send_id:
                        self._by_send[r.send_id] = known
                result.message_ids[r.send_id] = known
        return result

    def close(self) -> None:
        pass
