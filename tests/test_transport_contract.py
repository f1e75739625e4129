"""The contract every transport keeps, run against each one: the in-memory transport, the outbox
folder, SMTP (aiosmtpd) and SendGrid (Prism serving SendGrid's OpenAPI spec).

Each transport hands a prepared message over for a batch of recipients and says, per send id, that it
went (a message id) or why not; personal parts reach each recipient and nobody else; an empty batch is
a no-op; close() may be called twice.
"""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import pytest

from newsletter.send.transports.base import BatchResult, Transport
from newsletter.send.transports.memory import MemoryTransport
from newsletter.send.transports.outbox import OutboxTransport
from newsletter.send.transports.sendgrid import SendGridTransport
from newsletter.send.transports.smtp import SMTPTransport
from tests.support.send import Mailbox, Prism
from tests.test_send_transports import people, prepared

Delivered = Callable[[], dict[str, bytes | None]]  # address -> the message it got (None: not visible)


class Case:
    def __init__(self, transport: Transport, delivered: Delivered, idempotent: bool):
        self.transport = transport
        self.delivered = delivered
        self.idempotent = idempotent


def _memory(_request: pytest.FixtureRequest, _tmp: Path) -> Case:
    t = MemoryTransport()
    return Case(t, lambda: {m.to: m.data for m in t.messages}, idempotent=True)


def _outbox(_request: pytest.FixtureRequest, tmp: Path) -> Case:
    t = OutboxTransport(tmp / "outbox", fsync=False)

    def delivered() -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for path in (tmp / "outbox").glob("*.eml"):
            data = path.read_bytes()
            out[str(email.message_from_bytes(data, policy=policy.default)["To"].addresses[0].addr_spec)] = (
                data
            )
        return out

    return Case(t, delivered, idempotent=True)


def _smtp(request: pytest.FixtureRequest, _tmp: Path) -> Case:
    box: Mailbox = request.getfixturevalue("smtp_server")
    t = SMTPTransport(box.host, box.port, username="sender", password="secret", starttls=False, timeout=10)
    return Case(t, lambda: {to[0]: data for _, to, data in box.messages}, idempotent=False)


def _sendgrid(request: pytest.FixtureRequest, _tmp: Path) -> Case:
    prism: Prism = request.getfixturevalue("prism")  # fails the test on any spec violation
    t = SendGridTransport("SG.contract", prism.url, timeout=10)
    return Case(t, lambda: {}, idempotent=False)  # Prism validates; it delivers nothing to look at


@pytest.fixture(params=[_memory, _outbox, _smtp, _sendgrid], ids=["memory", "outbox", "smtp", "sendgrid"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    found = request.param(request, tmp_path)
    yield found
    found.transport.close()


def test_it_is_a_transport(case: Case) -> None:
    t = case.transport
    assert isinstance(t, Transport)
    assert t.mode in ("batch", "idempotent", "message") and t.batch_size >= 1 and t.name


def test_every_send_id_is_answered_once(case: Case) -> None:
    batch = people(7)
    result = case.transport.send_batch(prepared(), batch)
    assert isinstance(result, BatchResult)
    answered = set(result.message_ids) | set(result.failed)
    assert answered == {r.send_id for r in batch} and not set(result.message_ids) & set(result.failed)
    assert all(isinstance(v, str) for v in result.message_ids.values())
    if case.transport.mode != "batch":  # one hand-over a message: each has its own id
        assert all(result.message_ids.values())


def test_each_recipient_gets_their_own_message(case: Case) -> None:
    batch = people(4)
    case.transport.send_batch(prepared(), batch)
    delivered = case.delivered()
    if not delivered:  # SendGrid: the request passed SendGrid's own spec (the prism fixture checks)
        return
    assert set(delivered) == {r.email for r in batch}
    for r in batch:
        message = email.message_from_bytes(delivered[r.email] or b"", policy=policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "%%" not in text  # every placeholder filled in
        if r.name:
            assert r.name in text
        others = [o.name for o in batch if o.name and o is not r]
        assert not any(name in text for name in others)


def test_an_empty_batch_is_a_no_op(case: Case) -> None:
    result = case.transport.send_batch(prepared(), [])
    assert result.message_ids == {} and result.failed == {}
    assert case.delivered() == {}


def test_handing_a_batch_over_again(case: Case) -> None:
    batch = people(3)
    first = case.transport.send_batch(prepared(), batch)
    again = case.transport.send_batch(prepared(), batch)
    assert set(again.message_ids) == set(first.message_ids)
    if case.idempotent:  # the ledger relies on this to redo a batch cut short by a crash
        assert again.message_ids == first.message_ids
        assert len(case.delivered()) == 3


def test_close_twice(case: Case) -> None:
    case.transport.close()
    case.transport.close()


def test_the_memory_transport_keeps_messages_in_order() -> None:
    t = MemoryTransport()
    t.send_batch(prepared(), people(2))
    t.send_batch(prepared(), people(2, start=3))
    assert [m.send_id for m in t.messages] == [1, 2, 3, 4]
    assert all(b"Subject:" in m.data for m in t.messages)
