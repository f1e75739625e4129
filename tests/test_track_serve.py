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
        # The writer process has them once the store shows some: it writes what each hand-over holds.
        deadline = time.monotonic() + 20
        while _count(site) == 0:
            assert time.monotonic() < deadline, "no hit reached the writer process"
            time.sleep(0.05)
        writers = _children(proc.pid)
        assert writers, "the server runs no writer process"
        for _n in range(40):  # and these are on their way when the server dies
            assert httpx.get(f"{base}/o/{r}.gif").status_code == 200
    finally:
        proc.kill()  # no shutdown at all
        proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in writers):
        assert time.monotonic() < deadline, "the orphaned writer did not exit"
        time.sleep(0.05)
    # What the writer was handed is stored; at most the last flush interval (hits still in the dead
    # server's memory) is lost.
    stored = _count(site)
    assert 40 <= stored <= 80
    with site.store.read() as conn:  # nothing stored twice
        assert conn.scalar(select(func.count(func.distinct(events.c.id))).select_from(events)) == stored
    site.close()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.extend(int(c) for c in children)
    return found
