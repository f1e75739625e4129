"""Fixtures for the track and public-page tests, reusable by any web test (registered in tests/conftest.py).

- `live_server(site_or_app, hit_writer="thread") -> LiveServer`: the app under uvicorn on 127.0.0.1, a free
  port, in a thread;
  `.url`, `.stop()` (graceful: runs the lifespan shutdown). Stopped at teardown.
- `browser` / `page`: headless Chromium (Debian's, or NEWSLETTER_TEST_CHROMIUM) through Playwright.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


class LiveServer:
    """One uvicorn server in a thread, on a port the OS picked."""

    def __init__(self, app: Any):
        self.app = app
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that name it, and without
        # it every response waits ~40 ms for a delayed ACK (Nagle).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="httptools",
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Graceful stop: stop accepting, finish requests, run the lifespan shutdown."""
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(30)
        self.sock.close()


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], LiveServer]]:
    """Start servers for a Site (served by create_app) or any ASGI app; all stopped at teardown."""
    started: list[LiveServer] = []

    def start(site_or_app: Any, hit_writer: str = "thread") -> LiveServer:
        from newsletter.site import Site

        app = site_or_app
        if isinstance(site_or_app, Site):
            from newsletter.web.app import create_app

            # In-process writer by default: a writer process per test server costs an interpreter start.
            site_or_app.settings = site_or_app.settings.replace(hit_writer=hit_writer)
            app = create_app(site_or_app)
        server = LiveServer(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module, not per session: Playwright's sync API allows one running instance per thread, and
    # other modules (render's screenshots) start their own.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def seed_message(
    store: Any,
    *,
    email: str = "ana@example.org",
    language: str = "fr",
    links: tuple[tuple[str, str], ...] = (
        ("https://hub.example.org/sign-on?utm_source=nl", "declaration-sign-on"),
    ),
    list_slug: str = "members",
    sent_seconds_ago: float = 3600,
) -> dict[str, Any]:
    """One sent message in the ledger: occurrence, subscriber (confirmed on `list_slug`), send row, links."""
    from datetime import timedelta

    from sqlalchemy import select

    from newsletter.store import now_utc
    from newsletter.store.tables import links as links_table
    from newsletter.store.tables import lists, occurrences, sends, subscribers, subscriptions

    now = now_utc()
    with store.write() as conn:
        occ = conn.execute(
            occurrences.insert().values(
                key=f"test:{email}:{time.monotonic_ns()}",
                campaign="declaration-call",
                due_at=now,
                status="sent",
                languages=[language],
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        person = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
        if person is None:
            person = conn.execute(
                subscribers.insert().values(
                    email=email, name="Ana", language=language, timezone="UTC", created_at=now, updated_at=now
                )
            ).inserted_primary_key[0]
            list_id = conn.scalar(select(lists.c.id).where(lists.c.slug == list_slug))
            conn.execute(
                subscriptions.insert().values(
                    subscriber_id=person, list_id=list_id, status="confirmed", created_at=now, updated_at=now
                )
            )
        send = conn.execute(
            sends.insert().values(
                occurrence_id=occ,
                subscriber_id=person,
                email=email,
                language=language,
                status="sent",
                created_at=now,
                sent_at=now - timedelta(seconds=sent_seconds_ago),
            )
        ).inserted_primary_key[0]
        link_ids = [
            conn.execute(
                links_table.insert().values(
                    occurrence_id=occ,
                    campaign="declaration-call",
                    language=language,
                    url=url,
                    label=label,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            for url, label in links
        ]
    return {"occurrence_id": occ, "subscriber_id": person, "send_id": send, "link_ids": link_ids}
