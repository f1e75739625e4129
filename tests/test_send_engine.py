"""The example site's digest going out in five languages through each transport, end to end.

The five-language tests use the example site exactly as it is (its own schedules.yaml); the others
use the send tests' small schedules (tests/support/send.py)."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from typing import Any

from sqlalchemy import select

from newsletter.schedule.load import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.send import get_transport, ledger, transport_name
from newsletter.send.engine import send_occurrence, send_single
from newsletter.send.quota import StoreLimiter
from newsletter.store.tables import occurrences, sends
from tests.support.send import Mailbox, Prism, add_subscribers, parse_send_id

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)
LANGUAGES = ("en", "fr", "es", "ru", "pt")


def _digest(site: Any, n: int = 15) -> int:
    add_subscribers(site.store, n, languages=LANGUAGES, now=NOW)
    return create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)


def _finished(site: Any, occ: int) -> None:
    assert ledger.counts(site.store, occ) == {"sent": 15}
    with site.store.read() as conn:
        assert conn.scalar(select(occurrences.c.status).where(occurrences.c.id == occ)) == "sent"


def test_auto_transport_is_the_outbox_when_nothing_is_configured(send_site: Any) -> None:
    assert transport_name(send_site.settings) == "outbox"
    keyed = send_site.settings.replace(sendgrid_api_key="SG.x", smtp_host="mail.example.org")
    assert transport_name(keyed) == "sendgrid"
    assert transport_name(keyed.replace(sendgrid_api_key="")) == "smtp"


def test_digest_goes_out_in_five_languages_to_the_outbox(site: Any) -> None:
    occ = _digest(site)
    progress: list[tuple[int, int]] = []
    tally = send_occurrence(
        site, occ, NOW, load_schedules(site), progress=lambda done, total: progress.append((done, total))
    )
    assert tally.sent == 15 and not tally.errors
    _finished(site, occ)
    files = sorted(site.outbox_dir.iterdir())
    assert len(files) == 15
    languages = {}
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        languages[str(message["To"]).split("@")[0].split("<")[-1]] = message["Content-Language"]
        assert "%%" not in message.get_body(("html",)).get_content()
    assert set(languages.values()) == set(LANGUAGES)
    assert progress[-1] == (15, 15)


def test_digest_goes_out_in_five_languages_over_smtp(site: Any, smtp_server: Mailbox) -> None:
    site.settings = site.settings.replace(
        transport="smtp",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_username="sender",
        smtp_password="secret",
        smtp_starttls=False,
    )
    occ = _digest(site)
    tally = send_occurrence(site, occ, NOW, load_schedules(site))
    assert tally.sent == 15, tally.errors
    _finished(site, occ)
    assert smtp_server.sessions == 1  # one connection for the whole send
    assert sorted(smtp_server.count_by_recipient().values()) == [1] * 15
    with site.store.read() as conn:
        ids = {r.id: r.language for r in conn.execute(select(sends.c.id, sends.c.language))}
    seen = {}
    for _, _, data in smtp_server.messages:
        message = email.message_from_bytes(data, policy=policy.default)
        seen[parse_send_id(data)] = message["Content-Language"]
    assert seen == ids and set(seen.values()) == set(LANGUAGES)


def test_digest_goes_out_in_five_languages_through_sendgrid(site: Any, prism: Prism) -> None:
    site.settings = site.settings.replace(sendgrid_api_key="SG.test-key", sendgrid_host=prism.url)
    occ = _digest(site)
    tally = send_occurrence(site, occ, NOW, load_schedules(site))
    assert tally.sent == 15 and tally.batches == 5, tally.errors  # one request per language
    _finished(site, occ)
    with site.store.read() as conn:
        assert {r.language for r in conn.execute(select(sends.c.language))} == set(LANGUAGES)


def test_a_test_copy_leaves_the_ledger_alone(send_site: Any) -> None:
    from newsletter.render.assemble import prepare_campaign
    from newsletter.render.message import Recipient

    prepared, _ = prepare_campaign(send_site, load_schedules(send_site), "weekly-digest", "es", NOW)
    message_id = send_single(send_site, prepared, Recipient(0, "editor@example.org", "", "es"))
    assert message_id.startswith("single-") and message_id.endswith(".eml")
    with send_site.store.read() as conn:
        assert conn.execute(select(sends)).all() == []
    text = (send_site.outbox_dir / message_id).read_bytes()
    assert b"To: editor@example.org" in text and b"Content-Language: es" in text


def test_rate_limiter_spreads_messages_over_time(store: Any) -> None:
    clock = [1_000_000.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    limiter = StoreLimiter(store, "smtp", per_second=10, per_hour=25, clock=lambda: clock[0], sleep=sleep)
    for _ in range(20):
        limiter.acquire(1)
    assert 0.9 <= clock[0] - 1_000_000 <= 1.1  # 20 messages at 10/s, the first 10 from a full bucket
    limiter.acquire(5)
    before = clock[0]
    limiter.acquire(1)  # the hour is full: wait until the first message leaves the window
    assert clock[0] - before >= 3598


def test_limiters_of_one_store_share_the_limit(store: Any) -> None:
    """Two workers' limiters (each its own Store on one database) take turns in one bucket."""
    from newsletter.store import Store

    clock = [1_000_000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    other = Store(store.url)
    try:
        a = StoreLimiter(store, "sendgrid", per_second=100, clock=lambda: clock[0], sleep=sleep)
        b = StoreLimiter(other, "sendgrid", per_second=100, clock=lambda: clock[0], sleep=sleep)
        # Four batches of 100 at one instant: the first from the full bucket, then 1 s, 2 s, 3 s later.
        assert [a.acquire(100), b.acquire(100), a.acquire(100), b.acquire(100)] == [0.0, 1.0, 2.0, 3.0]
        own = StoreLimiter(store, "smtp", per_second=100, clock=lambda: clock[0], sleep=sleep)
        assert own.acquire(100) == 0.0  # another transport has its own limit
    finally:
        other.dispose()


def test_get_transport_builds_each_kind(send_site: Any) -> None:
    assert get_transport(send_site).name == "outbox"
    send_site.settings = send_site.settings.replace(transport="smtp", smtp_host="127.0.0.1")
    assert get_transport(send_site).name == "smtp"
    send_site.settings = send_site.settings.replace(transport="sendgrid", sendgrid_api_key="SG.x")
    assert get_transport(send_site).name == "sendgrid"


def test_check_reports_a_transport_without_its_settings(send_site: Any) -> None:
    from newsletter.send.check import check_site

    assert check_site(send_site).errors == []
    send_site.settings = send_site.settings.replace(transport="smtp")
    assert check_site(send_site).errors == [
        "transport = smtp but smtp_host is empty: set NEWSLETTER_SMTP_HOST"
    ]
    send_site.settings = send_site.settings.replace(transport="sendgrid", sendgrid_host="api.sendgrid.com")
    errors = check_site(send_site).errors
    assert any("sendgrid_api_key is empty" in e for e in errors) and any("sendgrid_host" in e for e in errors)
