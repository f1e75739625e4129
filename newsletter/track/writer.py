"""The hit writer in a process of its own, so classifying and storing hits never takes the GIL from
the web worker answering redirects.

The web process starts `python -m newsletter.track.writer` and hands each batch over its stdin as a
length-prefixed pickle (`ProcessSink.write`); the writer stores it with `hits.write_hits`. On a
graceful stop the web process closes the pipe and waits for the writer to commit what it has. If the
web process dies, the writer still reads everything already in the pipe, stores it, and exits at end
of file; if the writer dies, `HitBuffer` goes back to writing in its own thread. A plain subprocess
(not multiprocessing's spawn) so that no caller's `__main__` is ever re-imported.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

log = logging.getLogger(__name__)

HEADER = struct.Struct("!I")
# Below the web worker's priority: on a busy machine answering a click comes first, and the writer,
# which works in batches from a buffer, catches up in the gaps (it needs about a third of a core at
# 15,000 hits/s). A moderate step, so that under sustained load it still gets its share.
NICENESS = 5
RETRIES = 50  # the database failing at the end: retry for about RETRIES x the flush interval, then give up


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def _read(stream: IO[bytes]) -> Any | None:
    """The next object on `stream`, or None at end of file."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    data = stream.read(HEADER.unpack(head)[0])
    return pickle.loads(data)  # our own parent process wrote it: trusted


# Every hit adds an entry at a random place in ix_events_send, so a batch dirties about a page of
# that index per hit. With SQLite's default 2 MB page cache, those pages are read again from the file
# once the index outgrows it; and with the default checkpoint every 1,000 WAL pages, nearly every
# commit copies all of them to the database file at once, though most will be dirtied again by the
# next batch. A 64 MB cache and a checkpoint every 4,000 pages (a WAL of up to about 16 MB) cut the
# CPU of inserting and committing a batch by about a third: 27 -> 19 us per row in executemany plus
# commit, 1,200-row batches into a 300,000-event store (the cache alone: 22 us; 10,000 pages: 19 us).
SQLITE_CACHE_KIB = 65_536
SQLITE_CHECKPOINT_PAGES = 4_000


def _tune_sqlite(store: Any) -> None:
    """Settings of the writer's own connection (the process holds only this one writing connection)."""
    with store.write() as conn:
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")


class ProcessSink:
    """The web process's end of the writer process."""

    def __init__(self, url: str, policy: Any, interval: float):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter.track.writer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdin is not None
        self._stdin = self.process.stdin
        # Settings travel through the pipe, not argv: the IP key derives from the site's secret.
        self.write({"url": url, "policy": policy, "interval": interval})

    def write(self, obj: Any) -> None:
        """Hand an object over (raises OSError when the writer is gone)."""
        self._stdin.write(_frame(obj))
        self._stdin.flush()

    def write_hits(self, batch: Sequence[Any]) -> None:
        """Hand a batch of hits over: plain tuples in Hit's field order (a NamedTuple pickles about
        seven times slower, and this runs in the web process)."""
        self.write(batch)

    def close(self, timeout: float = 60.0) -> int:
        """Let the writer store what it has and stop; the number of hits it stored."""
        try:
            out, _ = self.process.communicate(timeout=timeout)  # closes stdin: end of file for the writer
        except subprocess.TimeoutExpired:
            log.error("the hit writer did not finish in %.0f s", timeout)
            return 0
        if self.process.returncode != 0:
            log.error("the hit writer ended with exit code %s", self.process.returncode)
        return int(out.strip() or 0)


def main() -> None:
    # Ctrl-C reaches the whole process group, and so does the SIGTERM of systemd, docker or a shell's
    # job control; the web process decides when to stop and then closes the pipe, so the writer
    # ignores both and drains what it was sent (a stop is then exit code 0, not -15).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from newsletter.store import Store  # after the signals: importing SQLAlchemy takes a while
    from newsletter.track.hits import Memory, write_hits
    from newsletter.track.links import LinkCache

    os.nice(NICENESS)
    stdin = sys.stdin.buffer
    config = _read(stdin)
    if config is None:
        return
    store = Store(config["url"], migrate=False)
    if store.is_sqlite:
        _tune_sqlite(store)
    memory = Memory(LinkCache(store))
    pending: list[Any] = []
    written = failures = 0
    ending = False
    while not ending or pending:
        if not ending:
            batch = _read(stdin)
            if batch is None:  # the web process stopped, or died: store what arrived, then stop
                ending = True
            else:
                pending.extend(batch)
        if not pending:
            continue
        try:
            written += write_hits(store, memory, config["policy"], pending)
            pending = []
            failures = 0
        except Exception:
            failures += 1
            log.exception("hit writer: storing %d hits failed (attempt %d)", len(pending), failures)
            if ending and failures >= RETRIES:
                log.error("hit writer: giving up on %d hits", len(pending))
                break
            time.sleep(config["interval"])
    store.dispose()
    sys.stdout.write(f"{written}\n")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="hit writer: %(levelname)s %(message)s")
    main()
