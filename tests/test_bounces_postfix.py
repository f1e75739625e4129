"""SMTP sending through the real local Postfix, and its real bounces read back over real IMAP and POP3.

Postfix (`.ci/mailserver.sh`) delivers good* addresses, bounces unknown ones with RFC 3464 DSNs sent
to the VERP envelope sender, answers 450 at RCPT for deferred* and 550 for refused*. Dovecot serves
the bounce mailbox.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from newsletter.audience.subscribers import email_hash
from newsletter.report import figures, rollup
from newsletter.schedule.load import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.send import ledger
from newsletter.send.engine import send_occurrence
from newsletter.send.verp import send_of
from newsletter.store.tables import (
    consents,
    events,
    send_batches,
    sends,
    subscribers,
    subscriptions,
    suppressions,
)
from newsletter.tokens import Signer
from newsletter.track.bounce_mail import pull_site
from tests.support.mailserver import MailServer
from tests.support.send import add_subscribers

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)


def _people(site: Any, server: MailServer, kinds: list[str]) -> list[str]:
    emails = []
    for kind in kinds:
        local = server.address(kind).split("@")[0]
        add_subscribers(site.store, 1, languages=("en",), now=NOW, prefix=local[:-1], domain=server.domain)
        emails.append(server.address(kind))
    return emails


def _statuses(site: Any) -> dict[str, set[str]]:
    with site.store.read() as conn:
        rows = conn.execute(
            select(subscribers.c.email, subscriptions.c.status).join(
                subscriptions, subscriptions.c.subscriber_id == subscribers.c.id
            )
        ).all()
    out: dict[str, set[str]] = {}
    for email_, status in rows:
        out.setdefault(email_, set()).add(status)
    return out


def _suppressed(site: Any, email_: str) -> bool:
    with site.store.read() as conn:
        return (
            conn.scalar(select(suppressions.c.reason).where(suppressions.c.email_hash == email_hash(email_)))
            is not None
        )


UNRELATED = (
    b"From: A Colleague <colleague@newsletter.test>\r\nTo: bounces@newsletter.test\r\n"
    b"Subject: lunch on Friday?\r\nMessage-ID: <lunch-1@newsletter.test>\r\n\r\nShall we?\r\n"
)
VACATION = (
    b"From: Someone <someone@newsletter.test>\r\nTo: bounces@newsletter.test\r\n"
    b"Subject: Out of office: Weekly digest\r\nAuto-Submitted: auto-replied\r\n"
    b"Message-ID: <vacation-1@newsletter.test>\r\n\r\nI am away until Monday.\r\n"
)


def test_a_campaign_through_postfix_ends_with_the_unknown_users_suppressed(
    site: Any, mailserver: MailServer
) -> None:
    site.settings = site.settings.replace(**mailserver.settings())
    good = _people(site, mailserver, ["good", "goodtoo"])
    unknown = _people(site, mailserver, ["nobody", "gone"])
    [refused] = _people(site, mailserver, ["refused"])
    [deferred] = _people(site, mailserver, ["deferred"])
    mailserver.send_plain(UNRELATED)
    mailserver.send_plain(VACATION)
    mailserver.wait_for(2)
    before = {body: flags for _, flags, body in mailserver.folder()}

    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    tally = send_occurrence(site, occ, NOW, load_schedules(site))
    assert (tally.sent, tally.failed, tally.deferred) == (4, 1, 1), tally.errors

    # At RCPT: the 550 is suppressed at once, the 450 counts one soft bounce and is tried later.
    assert _statuses(site)[refused] == {"bounced"} and _suppressed(site, refused)
    assert _statuses(site)[deferred] == {"confirmed"}
    with site.store.read() as conn:
        assert (
            conn.scalar(
                select(subscriptions.c.soft_bounces).join(subscribers).where(subscribers.c.email == deferred)
            )
            == 1
        )
        row = conn.execute(
            select(sends.c.status, sends.c.not_before, sends.c.error).where(sends.c.email == deferred)
        ).one()
    assert row.status == "pending" and row.not_before is not None and "450 4.2.1" in row.error

    # The good ones got the message, with the VERP envelope sender as Return-Path and From unchanged.
    signer = Signer(site.settings["secret_key"])
    for address in good:
        [message] = mailserver.delivered(address)
        send_id = send_of(signer, message["Return-Path"], "bounces@newsletter.test")
        with site.store.read() as conn:
            assert conn.scalar(select(sends.c.email).where(sends.c.id == send_id)) == address
        assert "bounces" not in message["From"]

    # Postfix's DSNs for the two unknown users arrive in the bounce mailbox next to the other mail.
    mailserver.wait_for(4)
    outcomes: list[Any] = []
    pulled = pull_site(site, NOW, outcomes)
    assert (pulled.seen, pulled.recognised, pulled.left) == (4, 2, 2), [o.why for o in outcomes]

    statuses = _statuses(site)
    for address in unknown:
        assert statuses[address] == {"bounced"} and _suppressed(site, address)
    for address in good:
        assert statuses[address] == {"confirmed"} and not _suppressed(site, address)
    assert statuses[deferred] == {"confirmed"}

    # The unrelated mail and the auto-reply are exactly as they were (not read, not moved, not flagged).
    after = {body: flags for _, flags, body in mailserver.folder()}
    assert after == before
    processed = mailserver.folder("processed")
    assert len(processed) == 2 and all(b"unknown user" in body for _, _, body in processed)

    # Recorded like SendGrid's events: the dashboard's figures count three bounces.
    with site.store.read() as conn:
        kinds = conn.execute(select(events.c.kind, events.c.source, events.c.data)).all()
        diag = conn.scalars(select(consents.c.detail).where(consents.c.action == "bounced")).all()
    assert sorted((k, s) for k, s, _ in kinds) == [
        ("bounce", "mailbox"),
        ("bounce", "mailbox"),
        ("bounce", "smtp"),
        ("deferred", "smtp"),
    ]
    assert any("5.1.1" in d and "unknown user" in d for d in diag)
    rollup.refresh_all(site.store)
    report = figures.campaign_report(site.store, [occ])
    assert report.total.bounced == 3

    # A second pull finds nothing new and changes nothing.
    again = pull_site(site, NOW, [])
    assert (again.seen, again.recognised, again.left) == (2, 0, 2)
    assert ledger.counts(site.store, occ)["sent"] == 4


def test_pop3_pull_and_the_pipe_command_read_real_dsns(
    site: Any, mailserver: MailServer, tmp_path: Any
) -> None:
    site.settings = site.settings.replace(
        **mailserver.settings(bounce_mailbox=mailserver.mailbox_url("pop3s"))
    )
    unknown = _people(site, mailserver, ["nobody", "gone"])
    mailserver.send_plain(UNRELATED)
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    assert send_occurrence(site, occ, NOW, load_schedules(site)).sent == 2
    dsns = [body for _, _, body in mailserver.wait_for(3) if b"delivery-status" in body]
    assert len(dsns) == 2

    # The MTA's pipe: one DSN on standard input.
    path = tmp_path / "dsn.eml"
    path.write_bytes(dsns[0])
    env = {
        "NEWSLETTER_DATABASE_URL": str(site.settings["database_url"]),
        "NEWSLETTER_SECRET_KEY": site.settings["secret_key"],
        "NEWSLETTER_BOUNCE_ADDRESS": "bounces@newsletter.test",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "bounces", "process", "-", "--site", str(site.root), "--json"],
        input=dsns[0],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b'"recognised": true' in done.stdout and b'"suppressed": 1' in done.stdout

    # POP3: both DSNs recognised (the piped one is a duplicate, stored once) and deleted; the rest stays.
    pulled = pull_site(site, NOW, [])
    assert (pulled.seen, pulled.recognised, pulled.left) == (3, 2, 1)
    assert all(_statuses(site)[a] == {"bounced"} for a in unknown)
    [(_, flags, body)] = mailserver.folder()
    assert body.endswith(UNRELATED.split(b"\r\n\r\n", 1)[1]) and b"\\Seen" not in flags
    with site.store.read() as conn:
        assert (
            conn.scalar(select(events.c.id).where(events.c.kind == "bounce").order_by(events.c.id.desc()))
            is not None
        )
        assert len(conn.execute(select(events.c.id).where(events.c.kind == "bounce")).all()) == 2


def test_the_run_loop_reads_the_bounce_mailbox_by_itself(site: Any, mailserver: MailServer) -> None:
    import threading
    import time

    from newsletter.track.bounce_mail import pull_every

    # Over IMAP with STARTTLS on port 143 this time.
    site.settings = site.settings.replace(
        **mailserver.settings(bounce_mailbox=mailserver.mailbox_url("imap"))
    )
    [unknown] = _people(site, mailserver, ["nobody"])
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    assert send_occurrence(site, occ, NOW, load_schedules(site)).sent == 1
    stop = threading.Event()
    thread = threading.Thread(target=pull_every, args=(site, stop, 0.01), name="bounce-pull")
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while _statuses(site)[unknown] != {"bounced"} and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert _statuses(site)[unknown] == {"bounced"} and not thread.is_alive()
    assert len(mailserver.folder("processed")) == 1 and mailserver.folder() == []


def test_the_test_mail_server_relays_nothing_off_the_machine(mailserver: MailServer) -> None:
    import smtplib

    with smtplib.SMTP(mailserver.smtp_host, mailserver.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail(f"bounces@{mailserver.domain}")[0] == 250
        code, reply = smtp.rcpt("someone@example.com")
    assert code == 554 and b"Relay access denied" in reply


def test_parallel_smtp_connections_send_each_message_once(site: Any, mailserver: MailServer) -> None:
    from collections import Counter

    site.settings = site.settings.replace(**mailserver.settings(smtp_connections=3))
    prefix = f"good-par-{mailserver.tag}-"
    add_subscribers(site.store, 230, languages=("en",), now=NOW, prefix=prefix, domain=mailserver.domain)
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    tally = send_occurrence(site, occ, NOW, load_schedules(site))
    assert tally.sent == 230 and tally.batches >= 3, (tally, tally.errors)
    assert ledger.counts(site.store, occ) == {"sent": 230}
    with site.store.read() as conn:
        batches = conn.execute(select(send_batches.c.worker).where(send_batches.c.occurrence_id == occ)).all()
    assert len({w for (w,) in batches}) >= 2, batches  # more than one connection took part
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 120
    while sum(seen.values()) < 230 and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = Counter(str(m.get("To", "")) for m in mailserver.delivered(prefix))
    assert len(seen) == 230 and set(seen.values()) == {1}, seen.most_common(3)
