"""The write path of opens, clicks and conversions: hits are buffered in memory and written in batches.

One commit per hit does not scale, so a request only appends its hit to a `HitBuffer`; every
`hit_flush_interval` seconds (sooner when `max_batch` hits are waiting) a thread takes what gathered
and either stores it in one transaction itself (writer="thread", `hits.write_hits`) or hands it to
the writer process (writer="process", `writer.py`), which does the same. `stop()` writes what is
left, so a graceful stop loses nothing; a crash of the web process loses at most the last interval.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from typing import Any

from newsletter.store import Store
from newsletter.track.hits import Memory, Policy, RawHit, write_hits
from newsletter.track.links import LinkCache
from newsletter.track.writer import ProcessSink

log = logging.getLogger("newsletter.track.hits")

MAX_PENDING = 500_000  # while the database is down, keep at most this many hits, then drop the oldest


class HitBuffer:
    """Hits waiting to be written, and the thread that hands them to the writer.

    writer="thread": this thread stores them itself; writer="process": it passes each batch to a writer
    process (`track.writer`), so the web worker's interpreter only ever appends to a list.
    """

    def __init__(
        self,
        store: Store,
        links_cache: LinkCache,
        policy: Policy,
        interval: float,
        max_batch: int = 5000,
        writer: str = "thread",
    ):
        self.store = store
        self.memory = Memory(links_cache)
        self.policy = policy
        self.interval = interval
        self.max_batch = max_batch
        self.writer = writer
        self.written = 0  # stored here, or handed to the writer process
        self.dropped = 0
        self._sink: Any = None
        # A deque, never replaced: append and popleft are atomic under the GIL, so the request path
        # queues a hit without taking a lock (the lock cost more than the append on a busy worker).
        self._pending: deque[RawHit] = deque()
        self._lock = threading.Lock()  # starting the thread
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, hit: RawHit) -> None:
        """Queue one hit (never blocks on the database, nor on a lock)."""
        pending = self._pending
        pending.append(hit)
        if self._thread is None:
            self.start()
        if len(pending) >= self.max_batch:
            self._wake.set()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            if self.writer == "process" and self._sink is None:
                self._sink = ProcessSink(self.store.url, self.policy, self.interval)
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="hit-writer", daemon=True)
            self._thread.start()
            # A safety net for servers run without the app's lifespan: write the rest at exit.
            atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the writer and write every hit still waiting (the graceful-stop guarantee)."""
        atexit.unregister(self.stop)
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join()
            self._thread = None
        self.flush()
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Write (or hand over) what is waiting now. A failed batch goes back to the queue."""
        with self._flush_lock:
            pending = self._pending
            # What is there now; hits the request path appends meanwhile wait for the next flush.
            batch = [pending.popleft() for _ in range(len(pending))]
            if not batch:
                return 0
            if self._sink is not None:
                try:
                    self._sink.write_hits(batch)
                    self.written += len(batch)
                    return len(batch)
                except OSError:
                    log.error("the hit writer process is gone; writing hits in this process from now on")
                    self._sink = None
            try:
                count = write_hits(self.store, self.memory, self.policy, batch)
            except Exception:
                log.exception("writing %d tracking hits failed; keeping them for the next flush", len(batch))
                pending.extendleft(reversed(batch))  # back in front, in their order
                excess = len(pending) - MAX_PENDING
                for _ in range(excess):  # the oldest go first
                    pending.popleft()
                self.dropped += max(excess, 0)
                return 0
            self.written += count
            return count

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
