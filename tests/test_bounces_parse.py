"""Reading bounces: a corpus of DSNs as Exim, Exchange, Gmail and Postfix write them, ARF complaints,
auto-replies and plain mail, each applied to the ledger of a real send; and the parser on any bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.audience.subscribers import email_hash
from newsletter.schedule.load import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.send.bounce_policy import Bounce, Policy, apply, bounce_status
from newsletter.send.engine import enqueue_occurrence
from newsletter.send.verp import envelope_sender, send_of
from newsletter.store.tables import consents, events, sends, subscribers, subscriptions, suppressions
from newsletter.tokens import Signer
from newsletter.track.bounce_mail import handle
from newsletter.track.dsn import parse
from newsletter.urls import recipient_token
from tests.support.send import add_subscribers

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)
SECRET = "test-secret-key-0123456789"
BOUNCES = "bounces@hub.example.org"
SIGNER = Signer(SECRET)


# ---------------------------------------------------------------- the corpus, made here


def original_headers(send_id: int, email: str, *, token: bool = True, message_id: bool = True) -> str:
    lines = ["From: HLM Hub <news@hub.example.org>", f"To: <{email}>", "Subject: Weekly digest"]
    if message_id:
        lines.append(f"Message-ID: <{send_id}.7.weekly-digest.en@hub.example.org>")
    if token:
        lines.append(f"List-Unsubscribe: <http://127.0.0.1:8000/u/{recipient_token(SIGNER, send_id)}>")
    return "\r\n".join(lines) + "\r\n"


def rfc3464(
    to: str,
    failed: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 user unknown",
    returned: str = "",
    returned_type: str = "message/rfc822",
    mta: str = "mx.example.net",
) -> bytes:
    boundary = "b0und4ry"
    parts = [
        f"From: Mail Delivery Subsystem <mailer-daemon@{mta}>\r\nTo: {to}\r\n"
        f"Subject: Delivery Status Notification\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <dsn-{abs(hash((to, failed, status, action)))}@{mta}>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n',
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n",
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {mta}\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n",
    ]
    if returned:
        parts.append(f"--{boundary}\r\nContent-Type: {returned_type}\r\n\r\n{returned}\r\n")
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode()


def exim(to: str, failed: str, returned: str) -> bytes:
    """Exim's default bounce: prose, no RFC 3464 part (flufl.bounce reads it)."""
    return (
        f"From: Mail Delivery System <Mailer-Daemon@mail.example.net>\r\nTo: {to}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\nAuto-Submitted: auto-replied\r\n"
        "X-Failed-Recipients: " + failed + "\r\nMessage-Id: <E1exim-0001@mail.example.net>\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {failed}\r\n    SMTP error from remote mail server after RCPT TO:<{failed}>:\r\n"
        "    550 5.1.1 No such user here\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n" + returned
    ).encode()


def arf(to: str, original_mail_from: str, returned: str, rcpt: str = "") -> bytes:
    boundary = "arfb0undary"
    rcpt_line = f"Original-Rcpt-To: {rcpt}\r\n" if rcpt else ""
    return (
        f"From: Feedback Loop <fbl@isp.example.com>\r\nTo: {to}\r\nSubject: Abuse report\r\n"
        "Message-ID: <arf-1@isp.example.com>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        f"User-Agent: SomeFBL/1.0\r\nVersion: 1\r\nOriginal-Mail-From: <{original_mail_from}>\r\n{rcpt_line}"
        f"Arrival-Date: Mon, 7 Jun 2021 08:00:00 +0000\r\n"
        f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n{returned}\r\n--{boundary}--\r\n"
    ).encode()


# ---------------------------------------------------------------- a real send to bounce


@pytest.fixture
def sent(site: Any) -> dict[str, int]:
    """A digest enqueued for five subscribers: address -> send id."""
    add_subscribers(site.store, 5, languages=("en",), now=NOW, prefix="reader")
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    enqueue_occurrence(site, occ, NOW, load_schedules(site))
    with site.store.read() as conn:
        return dict(conn.execute(select(sends.c.email, sends.c.id)).all())  # type: ignore[arg-type]


DEFAULT_POLICY = Policy()


def _apply(site: Any, raw: bytes, policy: Policy = DEFAULT_POLICY) -> Any:
    return handle(site.store, raw, signer=SIGNER, bounce_address=BOUNCES, policy=policy, now=NOW)


def _status(site: Any, email: str) -> set[str]:
    with site.store.read() as conn:
        return set(
            conn.scalars(
                select(subscriptions.c.status)
                .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
                .where(subscribers.c.email == email)
            )
        )


def _suppressed(site: Any, email: str) -> str | None:
    with site.store.read() as conn:
        return conn.scalar(
            select(suppressions.c.reason).where(suppressions.c.email_hash == email_hash(email))
        )


def test_verp_addresses_name_their_send_and_cannot_be_forged() -> None:
    address = envelope_sender(SIGNER, BOUNCES, 1234)
    local, _, domain = address.partition("@")
    assert local.startswith("bounces+") and domain == "hub.example.org" and len(local) <= 64
    assert send_of(SIGNER, address, BOUNCES) == 1234
    assert send_of(SIGNER, f"<{address}>") == 1234
    assert send_of(Signer("another-secret-key"), address) is None
    assert send_of(SIGNER, address.replace("bounces+", "other+"), BOUNCES) is None
    token = local.split("+", 1)[1]
    assert send_of(SIGNER, f"bounces+{token[:-1]}x@hub.example.org") is None
    assert send_of(SIGNER, f"bounces+{SIGNER.sign('recipient', 1234)}@hub.example.org") is None
    assert envelope_sender(SIGNER, BOUNCES, None) == BOUNCES


@pytest.mark.postgres
def test_exim_exchange_gmail_and_postfix_dsns_suppress_the_failed_reader(
    site: Any, sent: dict[str, int]
) -> None:
    emails = sorted(sent)
    cases = {
        # Exim's prose bounce to the VERP address, the whole message returned.
        emails[0]: exim(
            envelope_sender(SIGNER, BOUNCES, sent[emails[0]]),
            emails[0],
            original_headers(sent[emails[0]], emails[0]),
        ),
        # Exchange: only text/rfc822-headers, sent to the plain bounce address (VERP lost): the
        # signed List-Unsubscribe token in the returned headers names the send.
        emails[1]: rfc3464(
            BOUNCES,
            emails[1],
            status="5.1.10",
            diagnostic="smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
            returned=original_headers(sent[emails[1]], emails[1]),
            returned_type="text/rfc822-headers",
            mta="EX01.example.net",
        ),
        # Gmail-style: the returned headers keep only the Message-ID (unsigned): accepted because it
        # names the send that went to the failed address.
        emails[2]: rfc3464(
            BOUNCES,
            emails[2],
            diagnostic="smtp; 550-5.1.1 The email account that you tried to reach does not exist.",
            returned=original_headers(sent[emails[2]], emails[2], token=False),
            returned_type="text/rfc822-headers",
            mta="mx.google.com",
        ),
    }
    for email, raw in cases.items():
        outcome = _apply(site, raw)
        assert outcome.recognised, (email, outcome.why)
        assert outcome.applied.suppressed == 1
        assert _status(site, email) == {"bounced"} and _suppressed(site, email) == "bounced"
    for email in emails[3:]:
        assert _status(site, email) == {"confirmed"}
    with site.store.read() as conn:
        stored = conn.execute(
            select(events.c.kind, events.c.send_id, events.c.data).order_by(events.c.id)
        ).all()
    assert [(k, s) for k, s, _ in stored] == [("bounce", sent[e]) for e in cases]
    assert stored[1].data["status"] == "5.1.10" and "RecipientNotFound" in stored[1].data["reason"]
    # The same report again: stored once, nothing changes.
    again = _apply(site, cases[emails[1]])
    assert again.recognised and again.applied.duplicates == 1 and again.applied.stored == 0


def test_an_unsigned_message_id_for_another_address_is_not_trusted(site: Any, sent: dict[str, int]) -> None:
    a, b = sorted(sent)[:2]
    raw = rfc3464(
        BOUNCES, b, returned=original_headers(sent[a], a, token=False), returned_type="text/rfc822-headers"
    )
    outcome = _apply(site, raw)
    assert not outcome.recognised and "no send" in outcome.why
    assert _status(site, a) == {"confirmed"} and _status(site, b) == {"confirmed"}


def test_a_forged_verp_token_is_not_recognised(site: Any, sent: dict[str, int]) -> None:
    email = sorted(sent)[0]
    forged = envelope_sender(Signer("not-our-secret"), BOUNCES, sent[email])
    outcome = _apply(site, rfc3464(forged, email))
    assert not outcome.recognised
    assert _status(site, email) == {"confirmed"}


@pytest.mark.postgres
def test_delayed_and_temporary_failures_are_soft_and_decay(site: Any, sent: dict[str, int]) -> None:
    email = sorted(sent)[0]
    verp = envelope_sender(SIGNER, BOUNCES, sent[email])
    policy = Policy(soft_bounce_limit=2, soft_bounce_window_days=10)
    delayed = rfc3464(verp, email, status="4.4.7", action="delayed", diagnostic="smtp; 451 4.4.7 try later")
    outcome = _apply(site, delayed, policy)
    assert outcome.recognised and outcome.applied.suppressed == 0
    assert _status(site, email) == {"confirmed"}
    with site.store.read() as conn:
        assert conn.scalar(select(events.c.kind)) == "deferred"
        detail = conn.scalar(select(consents.c.detail).where(consents.c.action == "soft_bounce"))
    assert "4.4.7" in detail and "try later" in detail

    # Another soft bounce 11 days later: the first has decayed, so still one in the window.
    later = NOW + timedelta(days=11)
    with site.store.write() as conn:
        bounce = Bounce("soft", email, later, sent[email], "4.2.2", "mailbox full", "mailbox", "k1")
        assert apply(conn, [bounce], policy).suppressed == 0
    assert _status(site, email) == {"confirmed"}
    # A third within the window reaches the limit of two: bounced and suppressed.
    with site.store.write() as conn:
        bounce = Bounce(
            "soft", email, later + timedelta(days=1), sent[email], "4.2.2", "mailbox full", "mailbox", "k2"
        )
        assert apply(conn, [bounce], policy).suppressed == 1
    assert _status(site, email) == {"bounced"} and _suppressed(site, email) == "bounced"


def test_a_4xx_status_in_a_failed_dsn_is_a_soft_bounce(site: Any, sent: dict[str, int]) -> None:
    email = sorted(sent)[0]
    raw = rfc3464(
        envelope_sender(SIGNER, BOUNCES, sent[email]),
        email,
        status="4.2.2",
        diagnostic="smtp; 452 4.2.2 over quota",
    )
    outcome = _apply(site, raw)
    assert outcome.recognised and outcome.applied.suppressed == 0
    with site.store.read() as conn:
        kind, data = conn.execute(select(events.c.kind, events.c.data)).one()
    assert kind == "bounce" and data["type"] == "blocked" and data["status"] == "4.2.2"


@pytest.mark.postgres
def test_an_arf_report_is_a_spam_complaint(site: Any, sent: dict[str, int]) -> None:
    email = sorted(sent)[0]
    raw = arf(
        "fbl@hub.example.org",
        envelope_sender(SIGNER, BOUNCES, sent[email]),
        original_headers(sent[email], "redacted@isp.example.com", token=False),
    )
    outcome = _apply(site, raw)
    assert outcome.recognised and outcome.report.kind == "complaint"
    assert _status(site, email) == {"complained"} and _suppressed(site, email) == "complained"
    with site.store.read() as conn:
        assert conn.scalar(select(events.c.kind)) == "spamreport"
    # A redacted report without VERP, found through the signed token of the returned message.
    other = sorted(sent)[1]
    raw = arf("fbl@hub.example.org", "redacted", original_headers(sent[other], "redacted"))
    assert _apply(site, raw).recognised
    assert _status(site, other) == {"complained"}


def test_auto_replies_success_reports_and_plain_mail_are_left_alone(site: Any, sent: dict[str, int]) -> None:
    email = sorted(sent)[0]
    verp = envelope_sender(SIGNER, BOUNCES, sent[email])
    vacation = (
        f"From: <{email}>\r\nTo: {verp}\r\nSubject: Out of Office: Weekly digest\r\n"
        "Auto-Submitted: auto-replied\r\n\r\nI am away.\r\n" + original_headers(sent[email], email)
    ).encode()
    absent = f"From: <{email}>\r\nTo: {verp}\r\nSubject: Automatic reply: Weekly digest\r\n\r\nBack\r\n"
    absent_raw = absent.encode()
    delivered = rfc3464(verp, email, status="2.0.0", action="delivered", diagnostic="smtp; 250 ok")
    plain = b"From: friend@example.org\r\nTo: bounces@hub.example.org\r\nSubject: hello\r\n\r\nhi\r\n"
    cases = ((vacation, "autoreply"), (absent_raw, "autoreply"), (delivered, "other"), (plain, "other"))
    for raw, kind in cases:
        outcome = _apply(site, raw)
        assert not outcome.recognised and outcome.report.kind == kind
    assert _status(site, email) == {"confirmed"}
    with site.store.read() as conn:
        assert conn.scalar(select(events.c.id)) is None


def test_status_codes_are_read_from_replies() -> None:
    assert bounce_status("550 5.1.1 <x@example.org>: Recipient address rejected") == "5.1.1"
    assert bounce_status("SMTP RCPT TO:<x@y>: 450 4.2.1 try later") == "4.2.1"
    assert bounce_status("SMTP RCPT TO:<x@y>: 554 no such user") == "5.0.0"
    assert bounce_status("version 1.2.3.4") == ""


# ---------------------------------------------------------------- never raises


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    report = parse(raw, SIGNER, BOUNCES)
    assert report.kind in ("dsn", "complaint", "autoreply", "other")


_field = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    to=_field,
    failed=_field,
    status=_field,
    action=st.sampled_from(["failed", "delayed", "delivered", "", "FAILED", "x"]) | _field,
    diagnostic=_field,
    returned=_field,
    returned_type=st.sampled_from(["message/rfc822", "text/rfc822-headers", "text/plain"]),
)
def test_mangled_reports_parse_without_raising(
    to: str, failed: str, status: str, action: str, diagnostic: str, returned: str, returned_type: str
) -> None:
    raw = rfc3464(
        to,
        failed,
        status=status,
        action=action,
        diagnostic=diagnostic,
        returned=returned,
        returned_type=returned_type,
    )
    parse(raw, SIGNER, BOUNCES)
    parse(arf(to, failed, returned, rcpt=diagnostic), SIGNER, BOUNCES)
    parse(exim(to, failed, returned), SIGNER, BOUNCES)


def test_outbox_messages_show_the_verp_return_path(site: Any) -> None:
    from email import message_from_bytes

    from newsletter.send.engine import send_occurrence

    site.settings = site.settings.replace(bounce_address=BOUNCES)
    add_subscribers(site.store, 2, languages=("en",), now=NOW, prefix="reader")
    occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
    assert send_occurrence(site, occ, NOW, load_schedules(site)).sent == 2
    with site.store.read() as conn:
        by_email = dict(conn.execute(select(sends.c.email, sends.c.id)).all())
    for path in site.outbox_dir.iterdir():
        message = message_from_bytes(path.read_bytes())
        assert path.read_bytes().startswith(b"Return-Path: <bounces+")
        to = message["To"].rpartition("<")[2].strip("<>")
        assert send_of(SIGNER, message["Return-Path"], BOUNCES) == by_email[to]
        assert message["From"].endswith(">") and "bounces" not in message["From"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_bounce_mailbox_setting_parses_or_says_what_is_wrong(url: str) -> None:
    from newsletter.errors import ConfigError
    from newsletter.track.mailbox import SCHEMES, Mailbox

    try:
        box = Mailbox.parse(url)
    except ConfigError as exc:
        assert "bounce_mailbox" in str(exc)
    else:
        assert box.scheme in SCHEMES and box.host and box.user and 0 < box.port < 65536


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_address_reads_as_a_send_or_none(address: str) -> None:
    assert send_of(SIGNER, address, BOUNCES) is None or address.startswith("bounces+")


def test_check_names_bad_bounce_settings(site: Any) -> None:
    from newsletter.check import check_site

    site.settings = site.settings.replace(
        bounce_address="bounces+x@hub.example.org",
        bounce_mailbox="ftp://bounces@mail.example.org/",
        dkim_key_file="missing.pem",
        dkim_selector="nl",
    )
    errors = check_site(site).errors
    assert any(e.startswith("bounce_address 'bounces+x@hub.example.org'") for e in errors)
    assert any(e.startswith("bounce_mailbox 'ftp://") for e in errors)
    assert any(e.startswith("dkim_key_file") and "missing.pem" in e for e in errors)


def test_a_bounce_settles_an_smtp_message_left_in_doubt(site: Any, sent: dict[str, int]) -> None:
    from newsletter.send import ledger

    claim = ledger.claim_batch(site.store, transport="smtp", worker="w", limit=100, now=NOW, lease=300)
    assert claim is not None
    first = claim.rows[0]
    ledger.mark_in_flight(site.store, claim.batch_id, NOW, 300, [first.send_id])
    ledger.close_batch(site.store, claim.batch_id, "in_doubt", "lost in DATA", NOW, send_ids=[first.send_id])
    assert _apply(site, rfc3464(envelope_sender(SIGNER, BOUNCES, first.send_id), first.email)).recognised
    assert ledger.resolve_in_doubt(site.store, NOW) == 1
    with site.store.read() as conn:
        assert conn.scalar(select(sends.c.status).where(sends.c.id == first.send_id)) == "sent"


def test_soft_bounces_count_at_most_once_a_day(site: Any, sent: dict[str, int]) -> None:
    email = sorted(sent)[0]
    policy = Policy(soft_bounce_limit=2, soft_bounce_window_days=30)
    for hour in range(5):  # a server deferring every retry of one morning
        with site.store.write() as conn:
            at = NOW + timedelta(hours=hour)
            apply(conn, [Bounce("delayed", email, at, sent[email], "4.2.1", "busy", "smtp")], policy)
    assert _status(site, email) == {"confirmed"}
    with site.store.read() as conn:
        assert len(conn.execute(select(events.c.id).where(events.c.kind == "deferred")).all()) == 5
    with site.store.write() as conn:
        at = NOW + timedelta(days=2)
        assert apply(
            conn, [Bounce("delayed", email, at, sent[email], "4.2.1", "busy", "smtp")], policy
        ).suppressed
    assert _status(site, email) == {"bounced"}
