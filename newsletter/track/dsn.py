"""Read one message from the bounce mailbox: a delivery status notification, a complaint, or neither.

Pure: bytes in, a `Report` out, nothing raised whatever the bytes (a Hypothesis test holds it to that).

- RFC 3464 DSNs (`multipart/report; report-type=delivery-status`): each per-recipient block gives the
  failed address, its Action (failed, delayed, ...) and Status (5.1.1); MTAs that do not write RFC 3464
  (older Exim, qmail, Exchange's prose) are read by flufl.bounce, Mailman's detector.
- RFC 5965 ARF reports (`report-type=feedback-report`, the feedback loops of Yahoo, Microsoft, ...)
  are spam complaints.
- Auto-replies (RFC 3834 `Auto-Submitted: auto-replied`, vacation and out-of-office notices) are not
  bounces: they are reported as such and left alone.

Which send a report is about: the VERP address it was sent back to (To, Delivered-To,
X-Original-To, the ARF's Original-Mail-From, the returned message's Return-Path), else the signed
recipient token in the returned message's List-Unsubscribe header (inside `message/rfc822` or
`text/rfc822-headers`); both are signed. Failing those, the returned Message-ID names a send too, but
unsigned: the caller accepts it only when the failed address is that send's address.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from flufl.bounce import all_failures

from newsletter.send.verp import send_of
from newsletter.tokens import Signer
from newsletter.urls import read_recipient

Kind = Literal["dsn", "complaint", "autoreply", "other"]
_TOKEN_IN_URL = re.compile(r"/u/([A-Za-z0-9_-]{2,300}\.[A-Za-z0-9_-]{16})(?![A-Za-z0-9_-])")
_OUR_MESSAGE_ID = re.compile(r"<(\d{1,18})\.[A-Za-z0-9.-]+@[^>\s]+>")
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_ADDRESS = re.compile(r"[^\s<>;\"]+@[^\s<>;\"]+")
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|absence|"
    r"r[ée]ponse automatique|respuesta autom[áa]tica|abwesenheit|autoreply)",
    re.IGNORECASE,
)
MAX_BYTES = 10_000_000  # a bounce longer than this is not read (the mail stays where it is)


@dataclass(frozen=True)
class Failure:
    """One recipient a DSN reports on."""

    email: str
    action: str  # failed, delayed (relayed/delivered/expanded ones are not kept)
    status: str  # 5.1.1, 4.2.2, or "" when the report gives none
    diagnostic: str = ""

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and not self.status.startswith("4")


@dataclass
class Report:
    kind: Kind
    failures: list[Failure] = field(default_factory=list)
    send_id: int | None = None  # from a signed VERP address or recipient token
    unsigned_send_id: int | None = None  # from the returned Message-ID: check it against the address
    message_id: str = ""  # of the report itself, for dedupe
    complaint_type: str = ""  # ARF Feedback-Type
    complainant: str = ""  # ARF Original-Rcpt-To, when the provider gives it
    why: str = ""  # for "other": why it was not recognised


def parse(raw: bytes, signer: Signer, bounce_address: str = "") -> Report:
    """What `raw` (one whole message) reports; never raises."""
    if len(raw) > MAX_BYTES:
        return Report("other", why=f"larger than {MAX_BYTES} bytes")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        return _parse(msg, signer, bounce_address)
    except Exception as exc:  # noqa: BLE001 - a malformed message of any shape is "not recognised"
        return Report("other", why=f"unreadable: {type(exc).__name__}")


def _parse(msg: email.message.Message, signer: Signer, bounce_address: str) -> Report:
    report_type = _param(msg, "report-type").lower() if msg.get_content_type() == "multipart/report" else ""
    message_id = _header(msg, "Message-ID")[:300]
    if report_type == "feedback-report":
        report = _arf(msg)
    elif report_type == "delivery-status" or _has_part(msg, "message/delivery-status"):
        report = Report("dsn", failures=_dsn_failures(msg))
        if not report.failures:
            report.failures = _flufl(msg)
    else:
        # Prose bounces (Exim, qmail) say Auto-Submitted too: a vacation notice is one that no
        # detector reads as a bounce, or whose subject says what it is.
        failures = [] if _AUTOREPLY_SUBJECT.match(_header(msg, "Subject")) else _flufl(msg)
        if not failures:
            if _is_autoreply(msg):
                return Report("autoreply", message_id=message_id, why="an auto-reply, not a bounce")
            return Report("other", message_id=message_id, why="neither a bounce nor a complaint")
        report = Report("dsn", failures=failures)
    report.message_id = message_id
    returned = _returned_headers(msg)
    report.send_id = _signed_send(msg, returned, signer, bounce_address)
    if report.send_id is None:
        report.unsigned_send_id = _unsigned_send(returned)
    if report.kind == "dsn" and not report.failures:
        report.kind, report.why = "other", "a delivery report with no failed recipient"
    return report


# ---------------------------------------------------------------- DSN


def _dsn_failures(msg: email.message.Message) -> list[Failure]:
    out: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part):
            action = _header(block, "Action").lower().split(" ")[0]
            if action not in ("failed", "delayed"):
                continue
            address = _rfc822_address(_header(block, "Final-Recipient")) or _rfc822_address(
                _header(block, "Original-Recipient")
            )
            status = _header(block, "Status").split(" ")[0]
            if not _STATUS.match(status):
                status = ""
            diagnostic = _header(block, "Diagnostic-Code")
            diagnostic = diagnostic.partition(";")[2].strip() or diagnostic
            out.append(Failure(address, action, status, " ".join(diagnostic.split())[:1000]))
    return out


def _status_blocks(part: email.message.Message) -> list[email.message.Message]:
    """The per-recipient blocks of a message/delivery-status part (the first block is per-message)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses the blocks as header-only messages
        blocks = [b for b in payload if isinstance(b, email.message.Message)]
    else:  # encoded (base64, quoted-printable) or unparsed: split it ourselves
        data = part.get_payload(decode=True)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
        chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
        blocks = [email.message_from_string(c.strip() + "\n", policy=email.policy.compat32) for c in chunks]
    return [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient")]


def _flufl(msg: email.message.Message) -> list[Failure]:
    temporary, permanent = all_failures(msg)
    out = [Failure(_decode(a), "failed", "5.0.0") for a in sorted(permanent)]
    out += [Failure(_decode(a), "delayed", "4.0.0") for a in sorted(temporary - permanent)]
    return [f for f in out if "@" in f.email]


# ---------------------------------------------------------------- ARF


def _arf(msg: email.message.Message) -> Report:
    report = Report("complaint")
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _fields_of(part)
        report.complaint_type = fields.get("feedback-type", "abuse")[:64]
        report.complainant = _rfc822_address(fields.get("original-rcpt-to", ""))
        break
    return report


def _fields_of(part: email.message.Message) -> dict[str, str]:
    payload = part.get_payload()
    if isinstance(payload, list):
        headers: Iterable[tuple[str, str]] = [
            (k, str(v)) for b in payload if isinstance(b, email.message.Message) for k, v in b.items()
        ]
    else:
        data = part.get_payload(decode=True)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
        headers = email.message_from_string(text, policy=email.policy.compat32).items()
    return {k.lower(): " ".join(str(v).split()) for k, v in headers}


# ---------------------------------------------------------------- auto-replies


def _is_autoreply(msg: email.message.Message) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")):
        return True
    if _header(msg, "Precedence").lower() in ("auto_reply", "auto-reply"):
        return True
    return bool(_AUTOREPLY_SUBJECT.match(_header(msg, "Subject")))


# ---------------------------------------------------------------- whose send


def _returned_headers(msg: email.message.Message) -> list[email.message.Message]:
    """The headers of the message that bounced, from message/rfc822 or text/rfc822-headers parts."""
    out: list[email.message.Message] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                out.extend(p for p in payload if isinstance(p, email.message.Message))
            else:
                data = part.get_payload(decode=True)
                if isinstance(data, bytes):
                    out.append(email.message_from_bytes(data, policy=email.policy.compat32))
        elif kind == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(part.get_payload())
            out.append(email.message_from_string(text, policy=email.policy.compat32))
    return out


def _signed_send(
    msg: email.message.Message, returned: list[email.message.Message], signer: Signer, bounce_address: str
) -> int | None:
    candidates = [_header(msg, h) for h in ("Delivered-To", "X-Original-To", "To", "Envelope-To")]
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            candidates.append(_fields_of(part).get("original-mail-from", ""))
    candidates += [_header(h, "Return-Path") for h in returned]
    for value in candidates:
        for address in _ADDRESS.findall(value):
            found = send_of(signer, address, bounce_address)
            if found is not None:
                return found
    for headers in returned:
        for url in headers.get_all("List-Unsubscribe") or []:
            for token in _TOKEN_IN_URL.findall(str(url)):
                found = read_recipient(signer, token)
                if found is not None:
                    return found
    return None


def _unsigned_send(returned: list[email.message.Message]) -> int | None:
    for headers in returned:
        found = _OUR_MESSAGE_ID.search(_header(headers, "Message-ID"))
        if found:
            return int(found.group(1))
    return None


# ---------------------------------------------------------------- helpers


def _header(msg: email.message.Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return " ".join(value.split())


def _param(msg: email.message.Message, name: str) -> str:
    value = msg.get_param(name)
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return str(value or "")


def _has_part(msg: email.message.Message, content_type: str) -> bool:
    return any(p.get_content_type() == content_type for p in msg.walk())


def _rfc822_address(value: str) -> str:
    """The address of `rfc822; user@example.org` (RFC 3464 address-type; value)."""
    kind, semi, address = value.partition(";")
    if not semi:
        address = kind
    elif kind.strip().lower() not in ("rfc822", "x-rfc822"):
        return ""
    found = _ADDRESS.search(address)
    return found.group(0).strip(".,").lower() if found else ""


def _decode(address: bytes | str) -> str:
    text = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
    return text.strip().strip("<>").lower()
