"""Shared fixtures: a copy of the example site on a clean store, SQLite and (when configured) PostgreSQL.

Tests that take `db_url` (or `site`, `store`) run once per backend: SQLite always, PostgreSQL when
NEWSLETTER_TEST_POSTGRES_URL is set (`.ci/run` sets it). Each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from newsletter.site import Site
from newsletter.store import Store

# Each stage keeps its own fixtures in tests/support/<stage>.py.
pytest_plugins = [
    f"tests.support.{stage}"
    for stage in ("feeds", "render", "schedule", "send", "track", "report", "mailserver")
]

# Property tests (tests/test_fuzz_*.py): a moderate number of examples so the suite stays fast, no
# per-example deadline (a shared CI machine stalls), and the store-backed ones reuse one site per test.
settings.register_profile(
    "newsletter",
    max_examples=int(os.environ.get("NEWSLETTER_TEST_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("newsletter")

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")
SITE_PARTS = ("newsletter.toml", "lists", "templates", "schedules.yaml", "feeds", "content")


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends(), scope="function")


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with pg_schema_url(PG_URL) as url:
        yield url


@contextmanager
def pg_schema_url(base_url: str, prefix: str = "t_") -> Iterator[str]:
    """A URL to a fresh PostgreSQL schema in `base_url`'s database, dropped afterwards."""
    schema = prefix + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def copy_site(dest: Path) -> Path:
    """Copy the example site (the repo root's site files) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in SITE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("*.mo"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    return copy_site(tmp_path / "site")


@pytest.fixture
def site_env(db_url: str) -> dict[str, str]:
    """Environment for a site under test: its database, a fixed secret, nothing from the host."""
    return {"NEWSLETTER_DATABASE_URL": db_url, "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789"}


@pytest.fixture
def site(site_dir: Path, site_env: dict[str, str]) -> Iterator[Site]:
    """The example site on a fresh store, lists synced."""
    from newsletter.audience.lists import sync_lists

    loaded = Site.load(site_dir, environ=site_env)
    sync_lists(loaded)
    yield loaded
    loaded.close()


@pytest.fixture
def store(site: Site) -> Store:
    return site.store
