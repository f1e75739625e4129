"""kill -9 in mid-send, restart: every recipient gets exactly one message. Real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from newsletter.schedule.load import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.send import ledger
from newsletter.send.engine import enqueue_occurrence
from newsletter.send.transports.outbox import eml_name
from newsletter.store.tables import events, send_batches, sends
from tests.conftest import pg_schema_url
from tests.support.send import SCHEDULES, FaultySendGrid, Mailbox, add_subscribers, parse_send_id

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")


@pytest.fixture
def crash_env(tmp_path: Path) -> dict[str, str]:
    """Crash tests run once, on SQLite (the ledger tests cover both backends)."""
    return {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'crash.db'}",
        "NEWSLETTER_SECRET_KEY": "crash-test-key",
    }


@pytest.fixture
def shared_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Two workers share PostgreSQL when there is one (what SKIP LOCKED is for), else SQLite."""
    if not PG_URL:
        yield {
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
            "NEWSLETTER_SECRET_KEY": "k" * 20,
        }
        return
    with pg_schema_url(PG_URL) as url:
        yield {"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": "k" * 20}


def make_site(site_dir: Path, env: dict[str, str]) -> Any:
    from newsletter.audience.lists import sync_lists
    from newsletter.site import Site

    (site_dir / "schedules.yaml").write_text(SCHEDULES, encoding="utf-8")
    site = Site.load(site_dir, environ=env)
    sync_lists(site)
    return site


@pytest.fixture
def crash_site(site_dir: Path, crash_env: dict[str, str]) -> Iterator[Any]:
    site = make_site(site_dir, crash_env)
    yield site
    site.close()


@pytest.fixture
def shared_site(site_dir: Path, shared_env: dict[str, str]) -> Iterator[Any]:
    site = make_site(site_dir, shared_env)
    yield site
    site.close()


def worker(site: Any, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "worker", "--site", str(site.root), *args],
        cwd=REPO,
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def finish(site: Any, env: dict[str, str]) -> None:
    done = worker(site, env, "--once")
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err.decode()


def queued(site: Any, n: int) -> tuple[int, dict[int, str]]:
    add_subscribers(site.store, n, languages=("en", "fr"), now=NOW)
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    enqueue_occurrence(site, occ, NOW, load_schedules(site))
    with site.store.read() as conn:
        return occ, {r.id: r.email for r in conn.execute(select(sends.c.id, sends.c.email))}


def test_outbox_worker_killed_mid_send_and_restarted_writes_each_message_once(
    crash_site: Any, crash_env: dict[str, str]
) -> None:
    send_site, site_env = crash_site, crash_env
    occ, ids = queued(send_site, 800)
    outbox = send_site.outbox_dir
    outbox.mkdir(exist_ok=True)
    first = worker(send_site, site_env)
    wait_for(lambda: len(os.listdir(outbox)) >= 380)  # inside the second batch of 250
    kill(first)
    cut_at = len(os.listdir(outbox))
    assert cut_at < 800, "the worker finished before it was killed"
    with send_site.store.read() as conn:
        states = {r.status for r in conn.execute(select(send_batches.c.status))}
    assert states & {"claimed", "in_flight"}  # killed with a batch in hand
    finish(send_site, site_env)
    names = sorted(p for p in os.listdir(outbox) if not p.startswith("."))
    assert names == sorted(eml_name(i) for i in ids)  # one file per recipient, none twice, no temp left
    assert ledger.counts(send_site.store, occ) == {"sent": 800}


def test_smtp_worker_killed_mid_send_never_sends_twice(
    crash_site: Any, crash_env: dict[str, str], smtp_server: Mailbox
) -> None:
    send_site, site_env = crash_site, crash_env
    env = {
        **site_env,
        "NEWSLETTER_TRANSPORT": "smtp",
        "NEWSLETTER_SMTP_HOST": smtp_server.host,
        "NEWSLETTER_SMTP_PORT": str(smtp_server.port),
        "NEWSLETTER_SMTP_STARTTLS": "false",
    }
    occ, ids = queued(send_site, 150)
    first = worker(send_site, env)
    wait_for(lambda: len(smtp_server.messages) >= 60)
    kill(first)
    assert len(smtp_server.messages) < 150
    finish(send_site, env)
    received = {}
    for _, _, data in smtp_server.messages:
        send_id = parse_send_id(data)
        received[send_id] = received.get(send_id, 0) + 1
    assert max(received.values()) == 1  # nobody got a second copy
    doubted = ledger.list_in_doubt(send_site.store)
    # Only the one message on the wire at the kill can be in doubt; everyone else got theirs.
    assert sum(b["messages"] for b in doubted) <= 1
    with send_site.store.read() as conn:
        in_doubt = set(conn.scalars(select(sends.c.id).where(sends.c.status == "in_doubt")))
    assert set(ids) - in_doubt == set(received) - in_doubt
    # The operator looks at the mail server's log and decides; then everyone has exactly one.
    for batch in doubted:
        went = all(i in received for i in in_doubt)
        ledger.decide_in_doubt(send_site.store, batch["id"], "sent" if went else "resend", now=NOW)
    finish(send_site, env)
    counts = smtp_server.count_by_recipient()
    assert sorted(counts) == sorted(ids.values()) and set(counts.values()) == {1}
    assert ledger.counts(send_site.store, occ) == {"sent": 150}


def test_sendgrid_request_cut_by_a_crash_is_settled_by_events_not_resent(
    crash_site: Any, crash_env: dict[str, str], faulty_sendgrid: FaultySendGrid
) -> None:
    send_site, site_env = crash_site, crash_env
    env = {**site_env, "NEWSLETTER_SENDGRID_API_KEY": "SG.k", "NEWSLETTER_SENDGRID_HOST": faulty_sendgrid.url}
    occ, ids = queued(send_site, 10)
    faulty_sendgrid.script = [("hang", 5.0)]  # SendGrid takes the request and is slow to answer
    first = worker(send_site, env)
    wait_for(lambda: len(faulty_sendgrid.requests) >= 1)
    kill(first)
    finish(send_site, env)
    assert len(faulty_sendgrid.requests) == 2  # the other language's batch; the cut one was not resent
    doubted = ledger.list_in_doubt(send_site.store)
    assert [b["messages"] for b in doubted] == [5]
    cut = faulty_sendgrid.requests[0]["body"]["personalizations"][0]["custom_args"]["send_id"]
    with send_site.store.write() as conn:  # the tracking stage records SendGrid's webhook
        conn.execute(events.insert().values(kind="delivered", source="sendgrid", send_id=int(cut), at=NOW))
    finish(send_site, env)
    assert ledger.list_in_doubt(send_site.store) == []
    assert ledger.counts(send_site.store, occ) == {"sent": 10}
    assert len(faulty_sendgrid.requests) == 2


def test_two_workers_at_once_share_the_work_without_overlap(
    shared_site: Any, shared_env: dict[str, str]
) -> None:
    send_site, site_env = shared_site, shared_env
    occ, ids = queued(send_site, 1500)
    env = {**site_env, "NEWSLETTER_RATE_PER_SECOND": "500"}  # slow enough for both to take part
    a, b = worker(send_site, env, "--once", "--name", "a"), worker(send_site, env, "--once", "--name", "b")
    for proc in (a, b):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    names = sorted(p for p in os.listdir(send_site.outbox_dir) if not p.startswith("."))
    assert names == sorted(eml_name(i) for i in ids)
    assert ledger.counts(send_site.store, occ) == {"sent": 1500}
    with send_site.store.read() as conn:
        workers = {w.rsplit(":", 1)[-1] for w in conn.scalars(select(send_batches.c.worker))}
    assert workers == {"a", "b"}


def test_two_workers_keep_one_shared_rate_limit(
    shared_site: Any, shared_env: dict[str, str], smtp_server: Mailbox
) -> None:
    """Two processes, one limit of 20/s: together they send at 20/s, not 20/s each."""
    send_site, site_env = shared_site, shared_env
    occ, ids = queued(send_site, 120)
    env = {
        **site_env,
        "NEWSLETTER_TRANSPORT": "smtp",
        "NEWSLETTER_SMTP_HOST": smtp_server.host,
        "NEWSLETTER_SMTP_PORT": str(smtp_server.port),
        "NEWSLETTER_SMTP_STARTTLS": "false",
        "NEWSLETTER_RATE_PER_SECOND": "20",
        "NEWSLETTER_SEND_LEASE": "4",  # batches of 40 (rate x lease / 2): both workers get some
    }
    a, b = worker(send_site, env, "--once", "--name", "a"), worker(send_site, env, "--once", "--name", "b")
    for proc in (a, b):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert ledger.counts(send_site.store, occ) == {"sent": 120}
    assert sorted(smtp_server.count_by_recipient().values()) == [1] * 120
    with send_site.store.read() as conn:
        workers = {w.rsplit(":", 1)[-1] for w in conn.scalars(select(send_batches.c.worker))}
    assert workers == {"a", "b"}
    # A token bucket of 20/s holding 20: any k consecutive messages span at least (k - 20) / 20 s.
    # (Two limits of 20/s each would let 40 through at once and then 40/s.) Two messages of slack
    # for the time between a message's slot and its arrival.
    times = sorted(smtp_server.arrived)
    worst = max(
        (j - i + 1) - (20 + 20 * (times[j] - times[i]))
        for i in range(len(times))
        for j in range(i, len(times))
    )
    assert worst <= 2, f"{worst:.1f} messages over the shared limit"
    assert times[-1] - times[0] >= (120 - 20) / 20 - 0.2
