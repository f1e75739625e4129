"""What a new user trips over on the example site: where --site goes, the dashboard's first user, stopping."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from newsletter import accounts as users
from newsletter.cli import app
from newsletter.site import Site
from tests.conftest import REPO, copy_site


def _invoke(args: list[str], **env: str | None) -> str:
    result = CliRunner().invoke(app, args, env={"NEWSLETTER_DATABASE_URL": None, **env})
    assert result.exit_code == 0, result.output
    return result.output


def test_site_is_accepted_before_the_command_as_well_as_after(tmp_path: Path, monkeypatch: Any) -> None:
    first, second = copy_site(tmp_path / "first"), copy_site(tmp_path / "second")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    in_first, in_second = f"sqlite:///{first / 'newsletter.db'}", f"sqlite:///{second / 'newsletter.db'}"
    assert str(json.loads(_invoke(["--site", str(first), "config", "--json"]))["database_url"]) == in_first
    assert str(json.loads(_invoke(["config", "--json", "--site", str(first)]))["database_url"]) == in_first
    # Before the command beats the environment; the command's own --site beats both.
    shown = _invoke(["--site", str(first), "config", "--json"], NEWSLETTER_SITE=str(second))
    assert json.loads(shown)["database_url"] == in_first
    shown = _invoke(["--site", str(first), "config", "--json", "--site", str(second)])
    assert json.loads(shown)["database_url"] == in_second
    # And a group's subcommands (two levels down) take it too.
    rows = json.loads(_invoke(["--site", str(first), "lists", "show", "--json"]))
    assert "members" in json.dumps(rows)
    assert (first / "newsletter.db").exists() and not (elsewhere / "newsletter.db").exists()


def test_users_add_asks_for_what_is_missing_and_makes_the_first_user_staff(site: Site) -> None:
    runner = CliRunner()
    args = ["users", "add", "--site", str(site.root)]
    env = {"NEWSLETTER_DATABASE_URL": site.settings["database_url"]}
    result = runner.invoke(app, args, input="first@example.org\n\ns3cret-pass\ns3cret-pass\n", env=env)
    assert result.exit_code == 0, result.output
    assert "Email" in result.output and "[staff]" in result.output
    result = runner.invoke(app, args, input="second@example.org\n\ns3cret-pass\ns3cret-pass\n", env=env)
    assert result.exit_code == 0, result.output
    assert "[organiser]" in result.output
    assert [(u.email, u.role) for u in users.list_users(site.store)] == [
        ("first@example.org", "staff"),
        ("second@example.org", "organiser"),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_run_on_a_fresh_site_says_how_to_add_a_user_and_a_sigterm_stop_logs_no_error(tmp_path: Path) -> None:
    site_dir = copy_site(tmp_path / "site")
    port = _free_port()
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789",
        "NEWSLETTER_PORT": str(port),
        "NEWSLETTER_FEED_PULL_MINUTES": "0",
        "NEWSLETTER_HIT_WRITER": "process",
    }
    with log.open("wb") as out:
        # A session of its own, signalled as a whole: what systemd, docker and a terminal's job
        # control do, so the hit writer process gets the SIGTERM too.
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "--site", str(site_dir), "run"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _healthy(port), log.read_text()
        httpx.get(f"http://127.0.0.1:{port}/admin", timeout=5)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log.read_text()
    assert "no dashboard user yet" in output and "newsletter users add" in output, output
    assert "stopped" in output
    assert "ERROR" not in output and "exit code" not in output, output


def test_run_with_its_port_taken_stops_with_a_clear_error(tmp_path: Path) -> None:
    site_dir = copy_site(tmp_path / "site")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
            "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789",
            "NEWSLETTER_PORT": str(port),
            "NEWSLETTER_FEED_PULL_MINUTES": "0",
        }
        # --for 120: without the check it would run on, web-less, for two minutes (and exit 0).
        done = subprocess.run(
            [sys.executable, "-m", "newsletter", "--site", str(site_dir), "run", "--for", "120"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=100,
        )
    assert done.returncode == 2, done.stderr
    assert f"the web app could not listen on 127.0.0.1:{port}" in done.stderr
    assert "running:" not in done.stderr
