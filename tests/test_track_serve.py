"""`newsletter serve` as a real process (writer process on, the default): it answers; SIGTERM writes the
buffered hits before exit; after a SIGKILL the writer process still stores every hit handed to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from newsletter import urls
from newsletter.site import Site
from newsletter.store.tables import events
from newsletter.tokens import Signer
from tests.support.track import seed_message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(site_dir: Path, site_env: dict[str, str], interval: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, **site_env, "NEWSLETTER_HIT_FLUSH_INTERVAL": interval}
    cmd = [sys.executable, "-m", "newsletter", "serve", "--site", str(site_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "newsletter serve did not start"
        time.sleep(0.1)


def _count(site: Site) -> int:
    with site.store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


def test_serve_answers_and_flushes_on_sigterm(site: Site, site_dir: Path, site_env: dict[str, str]) -> None:
    seeded = seed_message(site.store)
    r = urls.recipient_token(Signer(site.settings["secret_key"]), seeded["send_id"])
    proc, base = _serve(site_dir, site_env, "60")
    try:
        for _n in range(25):
            assert httpx.get(f"{base}/o/{r}.gif").status_code == 200
        assert _count(site) == 0  # still in memory
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal it handled
    assert b"Application shutdown complete" in output
    assert _count(site) == 25


def test_a_killed_server_loses_at_most_the_last_interval(site_dir: Path, tmp_path: Path) -> None:
    # One backend is enough here (the writer's store calls are the same as in the SIGTERM test).
    from newsletter.audience.lists import sync_lists

    site_env = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'kill.db'}",
        "NEWSLETTER_SECRET_KEY": "k" * 24,
    }
    site = Site.load(site_dir, environ=site_env)
    sync_lists(site)
    seeded = seed_message(site.store)
    r = urls.recipient_token(Signer(site.settings["secret_key"]), seeded["send_id"])
    proc, base = _serve(site_dir, site_env, "0.2")
    try:
        for _n in range(40):
            assert httpx.get(f"{base}/o/{r}.gif").status_code == 200
        time.sleep(1.0)  # several flush intervals: every hit has been handed to the writer process
    finally:
        proc.kill()  # no shutdown at all
        proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while _count(site) < 40 and time.monotonic() < deadline:
        time.sleep(0.1)  # the orphaned writer drains the pipe, stores, and exits
    assert _count(site) == 40
    site.close()
