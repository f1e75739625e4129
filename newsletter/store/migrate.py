"""Apply the shipped Alembic migrations to a store."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory


class Store(Protocol):
    """What migrating needs of a store (newsletter.store.Store): its two connections and dialect."""

    dialect: str

    def read(self) -> AbstractContextManager[Any]: ...

    def write(self) -> AbstractContextManager[Any]: ...


MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(store: Store) -> str | None:
    with store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> str | None:
    """Bring the schema to `revision`; a no-op when it is there already. Returns the new revision."""
    if revision == "head" and current_revision(store) == head_revision():
        return head_revision()
    config = alembic_config()
    # Through the write path, so two processes starting at once on SQLite queue up instead of racing.
    with store.write() as conn:
        if store.dialect == "postgresql":
            # Serialise concurrent first starts on PostgreSQL too.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274001)")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(store)
