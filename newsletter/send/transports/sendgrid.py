"""SendGrid's v3 Mail Send API through the official client: up to 1000 recipients per request.

The content goes once per request; each personalization carries only what differs per person: the
address, `substitutions` for the placeholders (recipient token, name), `custom_args` naming the send
ledger row (the Event Webhook hands them back, which is how in-doubt requests are resolved), and the
List-Unsubscribe headers.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from newsletter.errors import TransportAuthError
from newsletter.send.transports.base import (
    BatchRejected,
    BatchResult,
    InDoubtError,
    Mode,
    TransientError,
)

MAX_RECIPIENTS = 1000  # per request, personalizations and addresses alike
MAX_CUSTOM_ARGS_BYTES = 10_000  # per personalization, top-level custom_args included
MAX_CATEGORIES = 10
MAX_WAIT = 60.0  # longest single pause, whatever X-RateLimit-Reset says


def build_request(prepared: Any, recipients: Sequence[Any], categories: Sequence[str] = ()) -> dict[str, Any]:
    """The Mail Send body for one batch; SendError when the batch breaks a limit the spec can't state."""
    if not recipients:
        raise BatchRejected("empty batch")
    if len(recipients) > MAX_RECIPIENTS:
        raise BatchRejected(f"{len(recipients)} recipients in one request; SendGrid accepts {MAX_RECIPIENTS}")
    seen: set[str] = set()
    common = {
        "campaign": str(prepared.campaign_id),
        "occurrence": str(prepared.occurrence_id or ""),
        "language": prepared.language,
    }
    # custom_args per personalization = the common ones + the send id: its size is known up front.
    common_size = len(json.dumps(common, ensure_ascii=False).encode("utf-8")) + len(', "send_id": ""')
    personalizations = []
    for r in recipients:
        address = r.email.lower()
        if address in seen:
            raise BatchRejected(f"address {r.email!r} twice in one request (send {r.send_id})")
        seen.add(address)
        to = {"email": r.email, "name": r.name} if r.name else {"email": r.email}
        custom = {"send_id": str(r.send_id)}
        size = common_size + len(custom["send_id"])
        if size >= MAX_CUSTOM_ARGS_BYTES:
            raise BatchRejected(
                f"custom_args of send {r.send_id} take {size} bytes; SendGrid's limit is 10000"
            )
        personalization: dict[str, Any] = {
            "to": [to],
            "substitutions": prepared.substitutions(r),
            "custom_args": custom,
        }
        headers = prepared.personal_headers(r)
        if headers:
            personalization["headers"] = headers
        personalizations.append(personalization)
    cats = list(dict.fromkeys(c[:255] for c in categories if c))[:MAX_CATEGORIES]
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": {"email": prepared.from_email, "name": prepared.from_name}
        if prepared.from_name
        else {"email": prepared.from_email},
        "subject": prepared.subject,
        # text/plain must come before text/html (SendGrid's rule).
        "content": [c for c in _content(prepared) if c["value"]],
        "custom_args": common,
    }
    if cats:
        body["categories"] = cats
    if prepared.attachments:
        body["attachments"] = [
            {
                "content": base64.b64encode(data).decode("ascii"),
                "type": content_type.split(";", 1)[0],
                "filename": name,
                "disposition": "attachment",
            }
            for name, content_type, data in prepared.attachments
        ]
    return body


def _content(prepared: Any) -> list[dict[str, str]]:
    return [{"type": "text/plain", "value": prepared.text}, {"type": "text/html", "value": prepared.html}]


def error_text(body: bytes | str | None) -> str:
    """SendGrid's own error messages from an error body, joined; the raw text if it is not its JSON."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        errors = json.loads(raw).get("errors") or []
        parts = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors
            if isinstance(e, dict)
        ]
        return "; ".join(parts) or raw[:2000]
    except (ValueError, AttributeError):
        return raw[:2000]


def retry_delay(attempt: int, headers: Any, now: float, base: float = 0.5) -> float:
    """Seconds to wait before retry `attempt` (0-based): until X-RateLimit-Reset if given, else backoff."""
    reset = headers.get("X-RateLimit-Reset") if headers is not None else None
    jitter = random.uniform(0, 0.25)  # spreads workers that were refused at the same moment
    if reset:
        try:
            return min(MAX_WAIT, max(0.0, float(reset) - now) + jitter)
        except ValueError:
            pass
    return min(MAX_WAIT, base * 2**attempt * random.uniform(0.5, 1.5))


class SendGridTransport:
    """Mail Send over HTTPS, retrying what SendGrid did not accept, never what it might have."""

    name = "sendgrid"
    mode: Mode = "batch"
    batch_size = MAX_RECIPIENTS

    def __init__(
        self,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        *,
        timeout: float = 30.0,
        retries: int = 5,
        categories: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        if not api_key:
            raise TransportAuthError("sendgrid_api_key is empty: set NEWSLETTER_SENDGRID_API_KEY")
        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.host = host
        self.timeout = timeout
        self.retries = retries
        self.categories = tuple(categories)
        self.sleep = sleep
        self.clock = clock
        self.requests = 0  # requests made, retries included (the benchmark counts them)

    def send_batch(self, prepared: Any, recipients: Sequence[Any]) -> BatchResult:
        if not recipients:
            return BatchResult()  # nothing to hand over: no request (the contract of every transport)
        body = build_request(prepared, recipients, (str(prepared.campaign_id), *self.categories))
        message_id = self.post(body)
        return BatchResult(
            provider_id=message_id, message_ids={r.send_id: message_id or "" for r in recipients}
        )

    def post(self, body: dict[str, Any]) -> str | None:
        """POST /v3/mail/send with retries; the X-Message-Id of the accepted request."""
        last = ""
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                response = self.client.client.mail.send.post(request_body=body, timeout=self.timeout)
            except HTTPError as err:
                status = int(err.status_code)
                text = error_text(err.body)
                if status in (401, 403):
                    raise TransportAuthError(
                        f"SendGrid refused the API key ({status}: {text}); fix sendgrid_api_key "
                        f"(it needs the Mail Send permission)"
                    ) from None
                if status == 429 or status >= 500:
                    last = f"SendGrid answered {status}: {text}"
                    if attempt < self.retries:
                        self.sleep(retry_delay(attempt, err.headers, self.clock()))
                    continue
                raise BatchRejected(f"SendGrid refused the request ({status}): {text}") from None
            except URLError as err:
                # Raised while connecting or writing the request: SendGrid has not got it whole.
                last = f"cannot reach SendGrid at {self.host}: {err.reason}"
                if attempt < self.retries:
                    self.sleep(retry_delay(attempt, None, self.clock()))
                continue
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as err:
                # The request went out and no answer came back: it may have been accepted.
                raise InDoubtError(
                    f"no answer from SendGrid after sending ({type(err).__name__}: {err}); "
                    f"the batch is in doubt until its events arrive or an operator decides"
                ) from None
            return str(response.headers.get("X-Message-Id") or "") or None
        raise TransientError(f"{last} (gave up after {self.retries + 1} attempts)")

    def close(self) -> None:
        pass
