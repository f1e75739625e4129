"""The transports against real servers: Prism (SendGrid's spec), a faulty SendGrid, aiosmtpd, a folder."""

from __future__ import annotations

import email
import json
import socket
import ssl
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest

from newsletter.errors import TransportAuthError
from newsletter.render.message import Prepared, Recipient
from newsletter.send.transports.base import BatchRejected, InDoubtError, TransientError
from newsletter.send.transports.outbox import OutboxTransport, eml_name
from newsletter.send.transports.sendgrid import SendGridTransport, build_request, retry_delay
from newsletter.send.transports.smtp import SMTPTransport
from newsletter.tokens import Signer
from tests.support.send import FaultySendGrid, Mailbox, Prism, free_port

NOW = datetime(2021, 6, 1, 9, 0, tzinfo=UTC)


def prepared(language: str = "fr") -> Prepared:
    return Prepared(
        language=language,
        subject="Réunion de haut niveau : les nouvelles",
        preheader="",
        from_name="Hub HLM 2021",
        from_email="hub@example.org",
        html='<html><body><p>Bonjour %%name%%</p><a href="https://hub.example.org/u/%%r%%">désinscription</a></body></html>',
        text="Bonjour %%name%%\nhttps://hub.example.org/u/%%r%%\n",
        links=[],
        campaign_id="weekly-digest",
        occurrence_id=7,
        base_url="https://hub.example.org",
        signer=Signer("test-secret"),
        now=NOW,
    )


def people(n: int, start: int = 1) -> list[Recipient]:
    return [
        Recipient(i, f"p{i}@example.org", f"Personne {i}" if i % 2 else "", "fr")
        for i in range(start, start + n)
    ]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# ---------------------------------------------------------------- SendGrid against Prism


def test_a_full_batch_of_1000_validates_against_sendgrids_spec(prism: Prism) -> None:
    transport = SendGridTransport("SG.test", prism.url, timeout=10)
    result = transport.send_batch(prepared(), people(1000))
    assert transport.requests == 1
    assert set(result.message_ids) == set(range(1, 1001))
    # the prism fixture fails the test on any violation in its log


def test_prism_refuses_what_the_spec_forbids_and_the_error_text_is_kept(prism: Prism) -> None:
    transport = SendGridTransport("SG.test", prism.url, timeout=10)
    body = build_request(prepared(), people(2))
    del body["from"]  # required by the spec
    with pytest.raises(BatchRejected, match="400"):
        transport.post(body)
    assert prism.violations(prism.new_log())  # Prism saw it; nothing else in this test may violate


def test_request_carries_content_once_and_personal_parts_per_recipient() -> None:
    body = build_request(prepared(), people(3), ["weekly-digest", "newsletter"])
    assert len(body["content"]) == 2 and body["content"][0]["type"] == "text/plain"
    assert "%%r%%" in body["content"][1]["value"]  # filled in by SendGrid from substitutions
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "p1@example.org", "name": "Personne 1"}]
    assert set(first["substitutions"]) >= {"%%r%%", "%%name%%"}
    assert first["custom_args"] == {"send_id": "1"}
    assert body["custom_args"] == {"campaign": "weekly-digest", "occurrence": "7", "language": "fr"}
    assert first["headers"]["List-Unsubscribe"].startswith("<https://hub.example.org/u/")
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["categories"] == ["weekly-digest", "newsletter"]
    tokens = {p["substitutions"]["%%r%%"] for p in body["personalizations"]}
    assert len(tokens) == 3


def test_limits_the_spec_cannot_express_are_enforced() -> None:
    with pytest.raises(BatchRejected, match="1001 recipients"):
        build_request(prepared(), people(1001))
    twice = people(2) + [Recipient(99, "P1@example.org")]
    with pytest.raises(BatchRejected, match="twice"):
        build_request(prepared(), twice)
    big = prepared()
    big.campaign_id = "c" * 10_000
    with pytest.raises(BatchRejected, match="custom_args"):
        build_request(big, people(1))


# ---------------------------------------------------------------- SendGrid faults


def test_429_waits_until_the_rate_limit_resets_then_sends(faulty_sendgrid: FaultySendGrid) -> None:
    sleeps = Sleeps()
    clock = 1_000_000.0
    faulty_sendgrid.script = [("status", 429, {"X-RateLimit-Reset": str(int(clock) + 7)}, {"errors": []})]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5, sleep=sleeps, clock=lambda: clock)
    result = transport.send_batch(prepared(), people(3))
    assert faulty_sendgrid.answered == [429, 202]
    assert 7.0 <= sleeps[0] <= 7.25
    assert result.provider_id == "msg2"
    # the retried request is the same request
    assert faulty_sendgrid.requests[0]["body"] == faulty_sendgrid.requests[1]["body"]


def test_5xx_is_retried_with_growing_jittered_backoff(faulty_sendgrid: FaultySendGrid) -> None:
    sleeps = Sleeps()
    faulty_sendgrid.script = [
        ("status", 500, {}, b"oops"),
        ("status", 503, {}, b""),
        ("status", 502, {}, b""),
    ]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5, sleep=sleeps)
    transport.send_batch(prepared(), people(2))
    assert faulty_sendgrid.answered == [500, 503, 502, 202]
    assert len(sleeps) == 3
    assert 0.25 <= sleeps[0] <= 0.75 and 0.5 <= sleeps[1] <= 1.5 and 1.0 <= sleeps[2] <= 3.0


def test_retries_run_out_into_a_transient_error(faulty_sendgrid: FaultySendGrid) -> None:
    faulty_sendgrid.script = [("status", 500, {}, b"")] * 3
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5, retries=2, sleep=Sleeps())
    with pytest.raises(TransientError, match="500.*3 attempts"):
        transport.send_batch(prepared(), people(2))


def test_400_fails_with_sendgrids_own_text_and_is_not_retried(faulty_sendgrid: FaultySendGrid) -> None:
    error = {
        "errors": [
            {"message": "The from address does not match a verified Sender Identity.", "field": "from"}
        ]
    }
    faulty_sendgrid.script = [("status", 400, {}, error)]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5, sleep=Sleeps())
    with pytest.raises(
        BatchRejected, match="from: The from address does not match a verified Sender Identity"
    ):
        transport.send_batch(prepared(), people(2))
    assert len(faulty_sendgrid.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_raise_transport_auth_error(faulty_sendgrid: FaultySendGrid, status: int) -> None:
    faulty_sendgrid.script = [
        ("status", status, {}, {"errors": [{"message": "The provided authorization grant is invalid"}]})
    ]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5, sleep=Sleeps())
    with pytest.raises(TransportAuthError, match="sendgrid_api_key"):
        transport.send_batch(prepared(), people(1))
    assert len(faulty_sendgrid.requests) == 1


def test_a_timeout_after_sending_is_in_doubt_not_retried(faulty_sendgrid: FaultySendGrid) -> None:
    faulty_sendgrid.script = [("hang", 2.0)]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=0.5, sleep=Sleeps())
    with pytest.raises(InDoubtError, match="in doubt"):
        transport.send_batch(prepared(), people(2))
    assert len(faulty_sendgrid.requests) == 1


def test_a_connection_dropped_after_sending_is_in_doubt(faulty_sendgrid: FaultySendGrid) -> None:
    faulty_sendgrid.script = [("drop",)]
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5, sleep=Sleeps())
    with pytest.raises(InDoubtError):
        transport.send_batch(prepared(), people(2))
    assert len(faulty_sendgrid.requests) == 1


def test_no_connection_at_all_is_retried_then_transient() -> None:
    sleeps = Sleeps()
    port = free_port()  # nothing listens there
    transport = SendGridTransport("SG.k", f"http://127.0.0.1:{port}", timeout=2, retries=3, sleep=sleeps)
    with pytest.raises(TransientError, match="cannot reach SendGrid"):
        transport.send_batch(prepared(), people(1))
    assert transport.requests == 4 and len(sleeps) == 3


def test_retry_delay_honours_reset_and_caps_it() -> None:
    assert 10 <= retry_delay(0, {"X-RateLimit-Reset": "110"}, now=100.0) <= 10.25
    assert retry_delay(0, {"X-RateLimit-Reset": "99999"}, now=100.0) == 60.0
    assert retry_delay(0, {"X-RateLimit-Reset": "50"}, now=100.0) <= 0.25


# ---------------------------------------------------------------- outbox


def test_outbox_writes_one_eml_per_send_id_and_never_twice(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    result = outbox.send_batch(prepared(), people(3))
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == [eml_name(1), eml_name(2), eml_name(3)]
    assert result.message_ids[2] == eml_name(2)
    first = (tmp_path / "outbox" / eml_name(1)).read_bytes()
    outbox.send_batch(prepared(), people(3))  # a retry after a crash
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == files
    assert (tmp_path / "outbox" / eml_name(1)).read_bytes() == first
    message = email.message_from_bytes(first, policy=policy.default)
    assert message["To"] == "Personne 1 <p1@example.org>"
    assert message["List-Unsubscribe"].startswith("<https://hub.example.org/u/")
    assert "%%" not in message.get_body(("html",)).get_content()


# ---------------------------------------------------------------- SMTP


def test_smtp_reuses_one_connection_with_auth(smtp_server: Mailbox) -> None:
    smtp = SMTPTransport(
        smtp_server.host, smtp_server.port, username="sender", password="secret", starttls=False, timeout=5
    )
    result = smtp.send_batch(prepared(), people(10))
    smtp.close()
    assert smtp.connections == 1 and smtp_server.sessions == 1
    assert len(smtp_server.messages) == 10
    assert [m[1] for m in smtp_server.messages] == [[f"p{i}@example.org"] for i in range(1, 11)]
    assert result.message_ids[1].startswith("OK queued as")
    body = email.message_from_bytes(smtp_server.messages[0][2], policy=policy.default)
    assert body["Subject"] == "Réunion de haut niveau : les nouvelles"


def test_smtp_starttls_then_auth(tls_smtp_server: tuple[Mailbox, Path]) -> None:
    box, ca = tls_smtp_server
    context = ssl.create_default_context(cafile=str(ca))
    smtp = SMTPTransport(
        box.host, box.port, username="sender", password="secret", timeout=5, tls_context=context
    )
    smtp.send_batch(prepared(), people(2))
    smtp.close()
    assert len(box.messages) == 2
    plain = SMTPTransport(box.host, box.port, username="sender", password="secret", starttls=False, timeout=5)
    with pytest.raises(TransportAuthError, match="smtp_starttls"):  # no AUTH offered before STARTTLS
        plain.send_batch(prepared(), people(1))
    assert len(box.messages) == 2


def test_smtp_wrong_password_is_an_auth_error(smtp_server: Mailbox) -> None:
    smtp = SMTPTransport(
        smtp_server.host, smtp_server.port, username="sender", password="nope", starttls=False
    )
    with pytest.raises(TransportAuthError, match="smtp_username"):
        smtp.send_batch(prepared(), people(1))
    assert smtp_server.messages == []


def test_smtp_reconnects_when_the_server_closed_the_reused_connection(smtp_server: Mailbox) -> None:
    smtp = SMTPTransport(smtp_server.host, smtp_server.port, starttls=False, timeout=5)
    smtp.send_batch(prepared(), people(1))
    assert smtp._conn is not None
    smtp._conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had timed the idle session out
    smtp.send_batch(prepared(), people(1, start=2))
    smtp.close()
    assert smtp.connections == 2 and len(smtp_server.messages) == 2


def test_smtp_server_gone_is_transient() -> None:
    smtp = SMTPTransport("127.0.0.1", free_port(), starttls=False, timeout=2)
    with pytest.raises(TransientError, match="cannot connect"):
        smtp.send_batch(prepared(), people(1))


def test_custom_args_json_is_small(faulty_sendgrid: FaultySendGrid) -> None:
    transport = SendGridTransport("SG.k", faulty_sendgrid.url, timeout=5)
    transport.send_batch(prepared(), people(1000))
    body = faulty_sendgrid.requests[0]["body"]
    per_recipient = len(json.dumps(body)) / 1000
    assert per_recipient < 600  # content once per request, only personal parts per recipient
