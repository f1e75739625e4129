"""The store: one database for everything, SQLite by default, PostgreSQL by URL.

Reads use `store.read()`, writes `store.write()`. On SQLite every write goes through one path: a
process-wide lock plus `BEGIN IMMEDIATE`, so the scheduler, the workers and the web app never meet
halfway through a transaction and never hit "database is locked" on upgrade from a read lock
(the datasette way). On PostgreSQL `write()` is a plain transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from newsletter.errors import StoreError

__all__ = ["Store", "open_store", "now_utc"]


def now_utc() -> datetime:
    return datetime.now(UTC)


class Store:
    """Engines and the write path of one database."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"sqlite", "postgresql"}:
            raise StoreError(
                f"database_url: unsupported database {self.dialect!r}; use sqlite:///FILE "
                f"or postgresql+psycopg://USER@HOST/DB"
            )
        self._write_lock = threading.RLock()
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=False)
            self._writer = _sqlite_engine(url, immediate=True)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, future=True)
            self._writer = self.engine
        if migrate:
            from newsletter.store.migrate import upgrade

            upgrade(self)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (autobegin, rolled back at the end)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, committed on success, rolled back on any error."""
        if self.is_sqlite:
            with self._write_lock, self._writer.begin() as conn:
                yield conn
        else:
            with self._writer.begin() as conn:
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writer is not self.engine:
            self._writer.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    # pysqlite's own transaction handling is switched off (isolation_level=None) so that we
    # emit BEGIN ourselves: BEGIN IMMEDIATE for the writer takes the write lock up front.
    engine = create_engine(
        url,
        future=True,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at `url`."""
    return Store(url, migrate=migrate)
