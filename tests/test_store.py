"""The store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from newsletter.errors import StoreError
from newsletter.store import Store, now_utc
from newsletter.store.migrate import current_revision, head_revision, upgrade
from newsletter.store.tables import metadata, suppressions


def test_migrations_build_exactly_the_declared_tables(db_url):
    store = Store(db_url)
    with store.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    store.dispose()
    assert diff == []


def test_upgrade_is_applied_once_and_is_idempotent(db_url):
    store = Store(db_url, migrate=False)
    assert current_revision(store) is None
    assert upgrade(store) == head_revision()
    assert upgrade(store) == head_revision()
    store.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def test_write_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(suppressions.insert().values(email_hash="a" * 64, reason="test", created_at=now_utc()))
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(suppressions)) == 0


def test_concurrent_writers_never_see_database_is_locked(store):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                with store.write() as conn:
                    seen = conn.scalar(sa.select(sa.func.count()).select_from(suppressions))
                    conn.execute(
                        suppressions.insert().values(
                            email_hash=f"{n:02d}{i:062d}", reason=str(seen), created_at=now_utc()
                        )
                    )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(suppressions)) == 150


def test_times_come_back_aware_utc_and_naive_ones_are_refused(store):
    paris = timezone(timedelta(hours=2))
    with store.write() as conn:
        conn.execute(
            suppressions.insert().values(
                email_hash="b" * 64, reason="x", created_at=datetime(2021, 6, 8, 16, 0, tzinfo=paris)
            )
        )
    with store.read() as conn:
        stored = conn.scalar(sa.select(suppressions.c.created_at))
    assert stored == datetime(2021, 6, 8, 14, 0, tzinfo=UTC) and stored.tzinfo is not None
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.write() as conn:
        conn.execute(
            suppressions.insert().values(email_hash="c" * 64, reason="x", created_at=datetime(2021, 6, 8))
        )


def test_unsupported_database_is_refused_with_the_accepted_forms():
    with pytest.raises(StoreError, match="postgresql\\+psycopg"):
        Store("mysql://root@localhost/test")
