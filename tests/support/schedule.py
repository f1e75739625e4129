"""Fixtures for the schedule tests (registered in tests/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from newsletter.site import Site
from newsletter.store.tables import lists, subscribers, subscriptions

# The templates schedules.yaml names. They are the render stage's; a copy of the site made before
# they exist gets empty stand-ins, so these tests check scheduling, not rendering.
TEMPLATES = ("digest", "event_reminder", "call_to_action", "confirm", "welcome")


def ensure_templates(site_dir: Path) -> None:
    folder = site_dir / "templates"
    folder.mkdir(exist_ok=True)
    for name in TEMPLATES:
        path = folder / f"{name}.mjml"
        if not path.exists():
            path.write_text("<mjml><mj-body></mj-body></mjml>\n", encoding="utf-8")


@pytest.fixture
def plain_site(site_dir: Path, tmp_path: Path) -> Iterator[Site]:
    """The example site on a throwaway SQLite file, for tests that never touch the store."""
    ensure_templates(site_dir)
    loaded = Site.load(site_dir, environ={"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'plain.db'}"})
    yield loaded
    loaded.close()


@pytest.fixture
def sched_site(site: Site) -> Site:
    """The example site on a fresh store of each backend, lists synced, templates present."""
    ensure_templates(site.root)
    return site


def add_subscribers(site: Site, people: list[dict[str, Any]], list_slug: str = "members") -> None:
    """Confirmed subscribers of `list_slug`: dicts with email, language, timezone, country."""
    now = datetime.now(UTC)
    with site.store.write() as conn:
        list_id = conn.execute(select(lists.c.id).where(lists.c.slug == list_slug)).scalar_one()
        for person in people:
            sid = conn.execute(
                insert(subscribers)
                .values(
                    email=person["email"],
                    name="",
                    language=person.get("language", "en"),
                    timezone=person.get("timezone", "UTC"),
                    country=person.get("country", ""),
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
                .returning(subscribers.c.id)
            ).scalar_one()
            conn.execute(
                insert(subscriptions).values(
                    subscriber_id=sid, list_id=list_id, status="confirmed", created_at=now, updated_at=now
                )
            )


def write_schedules(site: Site, text: str) -> None:
    site.schedules_file.write_text(text, encoding="utf-8")


def at_campaign(ident: str, when: datetime, late_by: str = "1h", template: str = "digest") -> str:
    """A campaign entry (YAML) sent once at `when` (UTC, to the second)."""
    return (
        f"  - id: {ident}\n    template: {template}\n    audience: {{lists: [members]}}\n"
        f"    trigger: {{at: '{when.astimezone(UTC):%Y-%m-%dT%H:%M:%S}', timezone: UTC}}\n"
        f"    late_by: {late_by}\n"
    )


class Recorder:
    """Wraps the send engine's enqueue_occurrence, recording the occurrences it really enqueued."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.event = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, site: Any, occurrence_id: int, now: datetime, schedules: Any) -> int:
        from newsletter.send.enqueue import enqueue_occurrence

        try:
            queued = enqueue_occurrence(site, occurrence_id, now, schedules)
            with self._lock:  # only once the real enqueue went through
                self.calls.append(occurrence_id)
            return queued
        finally:
            self.event.set()

    def wait(self, count: int, timeout: float = 10.0) -> bool:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while datetime.now(UTC) < deadline:
            if len(self.calls) >= count:
                return True
            self.event.wait(0.05)
            self.event.clear()
        return len(self.calls) >= count


class Clock:
    """An injected clock the tests move by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
