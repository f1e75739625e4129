"""Fixtures for the render tests (registered in tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.site import Site
from newsletter.store.tables import feeds, items, occurrences

DATA = Path(__file__).resolve().parent.parent / "data" / "render"
RENDER_NOW = datetime(2021, 4, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def render_now() -> datetime:
    return RENDER_NOW


def add_languages(site_dir: Path, *languages: str, fallback: str = "") -> None:
    """Add languages (and optional [site.fallback] lines) to a copied site's newsletter.toml."""
    path = site_dir / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    listed = ", ".join(f'"{lang}"' for lang in ("en", "fr", "es", "ru", "pt", *languages))
    text = text.replace('languages = ["en", "fr", "es", "ru", "pt"]', f"languages = [{listed}]")
    if fallback:
        text = text.replace("[site.fallback]\n", "[site.fallback]\n" + fallback + "\n")
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def render_env(tmp_path: Path) -> dict[str, str]:
    """Environment for render tests that do not touch the store's backend-specific parts (SQLite)."""
    return {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'render.db'}",
        "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789",
    }


@pytest.fixture
def render_site(site_dir: Path, render_env: dict[str, str]) -> Iterator[Site]:
    """The example site on SQLite, lists synced: for tests whose outcome cannot depend on the backend."""
    from newsletter.audience.lists import sync_lists

    loaded = Site.load(site_dir, environ=render_env)
    sync_lists(loaded)
    yield loaded
    loaded.close()


@pytest.fixture
def make_site(site_dir: Path, render_env: dict[str, str]) -> Iterator[Callable[..., Site]]:
    """Load the copied example site after changing it: extra languages, templates, catalogs."""
    loaded: list[Site] = []

    def make(
        *,
        languages: tuple[str, ...] = (),
        fallback: str = "",
        templates: dict[str, str] | None = None,
        arabic: bool = False,
    ) -> Site:
        if languages or fallback:
            add_languages(site_dir, *languages, fallback=fallback)
        for name, text in (templates or {}).items():
            path = site_dir / "templates" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if arabic:
            shutil.copytree(DATA / "locale" / "ar", site_dir / "templates" / "locale" / "ar")
        site = Site.load(site_dir, environ=render_env)
        loaded.append(site)
        return site

    yield make
    for site in loaded:
        site.close()


def add_occurrence(
    site: Site,
    campaign: str,
    *,
    event_id: str | None = None,
    session: str | None = None,
    due_at: datetime = RENDER_NOW,
    status: str = "sending",
) -> int:
    with site.store.write() as conn:
        result = conn.execute(
            occurrences.insert().values(
                key=f"{campaign}/{event_id}/{session}/{due_at.isoformat()}",
                campaign=campaign,
                event_id=event_id,
                session=session,
                due_at=due_at,
                status=status,
                reason="",
                languages=["en", "fr", "es", "ru", "pt"],
                template="",
                created_at=due_at,
                updated_at=due_at,
            )
        )
        return int(result.inserted_primary_key[0])


def add_items(site: Site, rows: list[dict[str, Any]], seen_at: datetime = RENDER_NOW) -> None:
    """Stored feed items, as a feed pull would leave them (not seeded, so they count as news)."""
    with site.store.write() as conn:
        feed_id = conn.execute(
            feeds.insert().values(
                name="hub-test",
                url="https://hlm2021-hub.example.org/feed",
                language=None,
                categories=[],
                seeded=True,
                active=True,
                created_at=seen_at,
            )
        ).inserted_primary_key[0]
        for i, row in enumerate(rows):
            conn.execute(
                items.insert().values(
                    feed_id=feed_id,
                    guid_key=f"guid:{i}",
                    title=row["title"],
                    link=row.get("link", f"https://hlm2021-hub.example.org/news/{i}"),
                    summary_html=row.get("summary_html", "<p>Summary.</p>"),
                    content_html="",
                    author="",
                    published_at=seen_at,
                    language=row.get("language", "en"),
                    categories=[],
                    content_hash=f"{i:064d}",
                    first_seen_at=seen_at,
                    changed_at=seen_at,
                    seeded=False,
                )
            )
