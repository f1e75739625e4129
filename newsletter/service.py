"""`newsletter run`, the main job: the scheduler, the send worker, the web app, feed and bounce pulls.

Shutdown order matters for "nothing half-sent": the scheduler stops first (a firing job finishes its
enqueue transaction), then the worker is asked to stop and finishes the batch it holds, then the web
server closes. The lock goes with the scheduler, so a standby `run` takes over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from newsletter.errors import ConfigError
from newsletter.runner import Runner
from newsletter.send.worker import run_worker

log = logging.getLogger("newsletter.schedule")


def run(
    site: Any,
    stop: threading.Event,
    *,
    for_seconds: float | None = None,
    on_wait: Callable[[], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> bool:
    """Run until `stop` is set (or `for_seconds` pass). False when stopped while still on standby."""
    runner = Runner(site, feed_pull_minutes=float(site.settings["feed_pull_minutes"]) or None)
    if not runner.start(stop, on_wait=on_wait):
        return False
    worker_stop = threading.Event()
    server = _web_server(site)
    threads = [
        threading.Thread(
            target=run_worker,
            args=(site, worker_stop),
            # The schedule in force: the worker renders what the scheduler planned, edits included.
            kwargs={"schedules": lambda: runner.schedules},
            name="send-worker",
        ),
        threading.Thread(target=server.run, name="web"),
    ]
    bounce_minutes = float(site.settings["bounce_pull_minutes"]) if site.settings["bounce_mailbox"] else 0
    if bounce_minutes:
        from newsletter.track.bounce_mail import pull_every

        threads.append(
            threading.Thread(target=pull_every, args=(site, worker_stop, bounce_minutes), name="bounce-pull")
        )
    for thread in threads:
        thread.start()
    if not _listening(server, threads[1]):
        # uvicorn logs the bind error and ends its thread: without this the rest would run on, and
        # `run` would say the web app is up while nothing answers.
        runner.stop()
        worker_stop.set()
        threads[0].join()
        raise ConfigError(
            f"the web app could not listen on {site.settings['host']}:{site.settings['port']} (is another"
            " program using the port? set `port` in newsletter.toml or NEWSLETTER_PORT)"
        )
    if on_ready:
        parts = [
            "scheduler",
            "send worker",
            f"web app at http://{site.settings['host']}:{site.settings['port']}",
        ]
        if runner.feed_pull_minutes:
            parts.append(f"feed pull every {runner.feed_pull_minutes:g} min")
        if bounce_minutes:
            parts.append(f"bounce mailbox read every {bounce_minutes:g} min")
        on_ready(", ".join(parts))
    try:
        stop.wait(for_seconds)
    finally:
        runner.stop()
        worker_stop.set()
        server.should_exit = True
        for thread in threads:
            thread.join()
    return True


def _listening(server: Any, thread: threading.Thread) -> bool:
    """Wait until uvicorn listens (True) or its thread has ended without listening (False)."""
    while not server.started:
        if not thread.is_alive():
            return False
        thread.join(0.05)
    return True


def _web_server(site: Any) -> Any:
    import uvicorn

    from newsletter.web.app import create_app

    # lifespan "on": the app's shutdown flushes buffered tracking hits before the process exits.
    config = uvicorn.Config(
        create_app(site),
        host=site.settings["host"],
        port=int(site.settings["port"]),
        log_level="warning",
        lifespan="on",
    )
    return uvicorn.Server(config)
