"""The contract every transport keeps: hand a batch of recipients of one prepared message over.

    SendError                     (newsletter.errors)
    ├── TransportAuthError        401/403: credentials refused; the occurrence pauses
    ├── BatchRejected             the provider refused this batch (400): failed, not retried
    ├── TransientError            nothing was accepted (429/5xx/no connection after retries): requeue
    └── InDoubtError              the request may have been accepted (timeout, dropped after sending)

A transport says how the ledger must drive it (`mode`):
- "batch": one request carries the whole batch, accepted or not as a whole (SendGrid);
- "idempotent": handing the same send id over twice delivers once (the outbox), so a batch cut short
  by a crash is simply handed over again;
- "message": each message is its own hand-over (SMTP), so the ledger marks every message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from newsletter.errors import BatchRejected, InDoubtError, SendError, TransientError, TransportAuthError

Mode = Literal["batch", "idempotent", "message"]

__all__ = [
    "Mode",
    "Transport",
    "BatchResult",
    "BatchRejected",
    "TransientError",
    "InDoubtError",
    "SendError",
    "TransportAuthError",
]


@dataclass
class BatchResult:
    """What a transport reports for a batch it handed over."""

    provider_id: str | None = None  # SendGrid's X-Message-Id for the request
    # send id -> message id ("" when the provider names none, as a SendGrid stand-in may not)
    message_ids: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # send id -> why this recipient was refused
    deferred: dict[int, str] = field(default_factory=dict)  # send id -> a temporary refusal (SMTP 4xx)
    refused_recipients: set[int] = field(default_factory=set)  # failed because the address was refused


@runtime_checkable
class Transport(Protocol):
    """Hands prepared messages to a mail system."""

    name: str
    mode: Mode
    batch_size: int

    def send_batch(self, prepared: Any, recipients: Sequence[Any]) -> BatchResult:
        """Hand `prepared` over for `recipients` (render.message.Recipient); raise a SendError.

        Every send id is answered once, in `message_ids` or `failed`; an empty batch does nothing.
        `tests/test_transport_contract.py` holds every transport to this.
        """
        ...

    def close(self) -> None: ...
