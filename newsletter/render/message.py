"""Personalised MIME messages, prepared once per (campaign, language) and filled in per recipient.

`Prepared` holds the compiled HTML and text with placeholders (`%%r%%` the signed recipient token,
`%%name%%`, `%%t0%%`... times in the reader's timezone). The MIME structure, the encoded headers and the
quoted-printable bodies are built once: each placeholder sits alone on a soft-broken QP line, so
filling one in never re-encodes the body nor breaks the 76-column limit. Per recipient that leaves one
HMAC, a few small strings and one `bytes.join`.
"""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import quoprimime
from email.header import Header
from email.utils import format_datetime as rfc2822_date
from email.utils import formataddr

from newsletter import urls
from newsletter.render import formatting
from newsletter.tokens import Signer

NAME = "%%name%%"
PLACEHOLDER = re.compile(r"%%(r|name|t\d+)%%")
SAFE_VALUE = re.compile(r"[A-Za-z0-9.,:;'()/_+\-](?:[A-Za-z0-9 .,:;'()/_+\-]{0,68}[A-Za-z0-9.,:;'()/_+\-])?")
CRLF = "\r\n"
PLAIN_NAME = re.compile(r"[A-Za-z0-9 .,'()-]{1,100}")


@dataclass(frozen=True)
class Recipient:
    send_id: int
    email: str
    name: str = ""
    language: str = "en"
    subscriber_id: int | None = None
    timezone: str = "UTC"


def time_placeholder(index: int) -> str:
    return f"%%t{index}%%"


def _qp(text: str) -> str:
    # 75, not 76: a soft break "=" may follow the last line of a chunk.
    return quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), maxlinelen=75, eol=CRLF)


def _qp_value(value: str) -> bytes:
    """One personal value as whole QP lines ending in a soft break (so the next static part follows)."""
    value = value.replace("\r", " ").replace("\n", " ")
    if not value:
        return b""
    if SAFE_VALUE.fullmatch(value):
        return value.encode("ascii") + b"=\r\n"
    return (_qp(value) + "=" + CRLF).encode("ascii")


def _qp_parts(text: str, suffix: str) -> list[bytes | str]:
    """`text` QP-encoded into static chunks and placeholder slots (named `<key><suffix>`)."""
    parts: list[bytes | str] = []
    pos = 0
    for match in PLACEHOLDER.finditer(text):
        chunk = _qp(text[pos : match.start()])
        if chunk and not chunk.endswith(CRLF):
            chunk += "=" + CRLF
        parts.append(chunk.encode("ascii"))
        parts.append(match.group(1) + suffix)
        pos = match.end()
    parts.append(_qp(text[pos:]).encode("ascii"))
    return parts


def _header(name: str, value: str) -> str:
    return Header(value, "utf-8", header_name=name).encode(linesep=CRLF) if not value.isascii() else value


def _address(name: str, email: str) -> str:
    if not name:
        return email
    if PLAIN_NAME.fullmatch(name):
        return f'"{name}" <{email}>'
    if name.isascii():
        return formataddr((name, email))
    return formataddr((name, email), charset="utf-8")


@dataclass
class Prepared:
    """One (campaign, language) rendered and encoded; `mime(recipient)` fills in the personal parts."""

    language: str
    subject: str
    preheader: str
    from_name: str
    from_email: str
    html: str
    text: str
    links: list[tuple[int | None, str, str]]
    campaign_id: str
    occurrence_id: int | None
    base_url: str
    signer: Signer = field(repr=False)
    now: datetime
    times: list[tuple[datetime, str]] = field(default_factory=list)  # (instant, "datetime"|"time")
    name_fallback: str = ""
    default_timezone: str = "UTC"
    list_id: str = ""
    missing: list[str] = field(default_factory=list)  # msgids the language's own catalog lacks
    # (filename, content type, bytes), the same for every recipient: e.g. the event's .ics file.
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._domain = self.from_email.rpartition("@")[2] or "localhost"
        self._mid = re.sub(
            r"[^A-Za-z0-9.-]", "-", f"{self.occurrence_id or 0}.{self.campaign_id}.{self.language}"
        )
        self._times_by_zone: dict[str, list[str]] = {}
        self._encoded_by_zone: dict[str, dict[str, bytes]] = {}
        self._dates: dict[datetime, str] = {}
        digest = hashlib.sha1(f"{self.campaign_id}/{self.language}/{self.occurrence_id}".encode()).hexdigest()
        boundary = f"=_nl_{digest[:24]}"  # "=_" cannot occur in QP text, so never in a body
        head = [
            f"From: {_address(self.from_name, self.from_email)}",
            f"Subject: {_header('Subject', self.subject)}",
            "MIME-Version: 1.0",
            f"Content-Language: {self.language}",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ]
        if self.list_id:
            head.append(f"List-Id: <{self.list_id}.{self._domain}>")
        mixed = boundary + "_m"
        if self.attachments:  # multipart/mixed: the alternative first, then the files
            head.append(f'Content-Type: multipart/mixed; boundary="{mixed}"')
        else:
            head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        self._head = (CRLF.join(head) + CRLF).encode("ascii")
        part = 'Content-Type: text/{}; charset="utf-8"' + CRLF + "Content-Transfer-Encoding: quoted-printable"
        body: list[bytes | str] = [
            f"{CRLF}--{boundary}{CRLF}{part.format('plain')}{CRLF}{CRLF}".encode("ascii"),
            *_qp_parts(self.text, ":text"),
            f"{CRLF}--{boundary}{CRLF}{part.format('html')}{CRLF}{CRLF}".encode("ascii"),
            *_qp_parts(self.html, ":html"),
            f"{CRLF}--{boundary}--{CRLF}".encode("ascii"),
        ]
        if self.attachments:
            body.insert(
                0,
                f"{CRLF}--{mixed}{CRLF}Content-Type: multipart/alternative; "
                f'boundary="{boundary}"{CRLF}'.encode("ascii"),
            )
            for name, content_type, data in self.attachments:
                encoded = base64.encodebytes(data).decode("ascii").replace("\n", CRLF)
                body.append(
                    f'{CRLF}--{mixed}{CRLF}Content-Type: {content_type}; name="{name}"{CRLF}'
                    f'Content-Disposition: attachment; filename="{name}"{CRLF}'
                    f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{encoded}".encode("ascii")
                )
            body.append(f"{CRLF}--{mixed}--{CRLF}".encode("ascii"))
        # Static chunks stay in place; slots are (index, key) to overwrite in a copy per message.
        self._body = [p if isinstance(p, bytes) else b"" for p in body]
        self._slots = [(i, p) for i, p in enumerate(body) if isinstance(p, str)]
        self._date = rfc2822_date(self.now)

    # -- personal values
    def token(self, recipient: Recipient) -> str:
        return urls.recipient_token(self.signer, recipient.send_id)

    def local_times(self, timezone: str) -> list[str]:
        """The message's times written for a reader in `timezone` (cached per zone)."""
        cached = self._times_by_zone.get(timezone)
        if cached is None:
            cached = [
                formatting.format_datetime(at, self.language, timezone)
                if style == "datetime"
                else formatting.format_time(at, self.language, timezone)
                for at, style in self.times
            ]
            self._times_by_zone[timezone] = cached
        return cached

    def _encoded_times(self, timezone: str) -> dict[str, bytes]:
        cached = self._encoded_by_zone.get(timezone)
        if cached is None:
            cached = {}
            for i, text in enumerate(self.local_times(timezone)):
                cached[f"t{i}:text"] = _qp_value(text)
                cached[f"t{i}:html"] = _qp_value(htmllib.escape(text))
            self._encoded_by_zone[timezone] = cached
        return cached

    def substitutions(self, recipient: Recipient) -> dict[str, str]:
        """Placeholder -> value for this recipient (the name HTML-escaped, as it lands in the HTML)."""
        values = {
            urls.RECIPIENT: self.token(recipient),
            NAME: htmllib.escape(recipient.name or self.name_fallback),
        }
        for i, text in enumerate(self.local_times(recipient.timezone)):
            values[time_placeholder(i)] = htmllib.escape(text)
        return values

    def unsubscribe_url(self, recipient: Recipient) -> str:
        return urls.unsubscribe_url(self.base_url, self.token(recipient))

    def message_id(self, recipient: Recipient) -> str:
        return f"<{recipient.send_id}.{self._mid}@{self._domain}>"

    def personal_headers(self, recipient: Recipient) -> dict[str, str]:
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url(recipient)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Message-ID": self.message_id(recipient),
        }

    def personalise(self, body: str, recipient: Recipient, *, html: bool = True) -> str:
        """`self.html` or `self.text` with this recipient's values filled in (for previews and archives)."""
        values = self.substitutions(recipient)
        if not html:
            values[NAME] = recipient.name or self.name_fallback
            values.update(
                {time_placeholder(i): t for i, t in enumerate(self.local_times(recipient.timezone))}
            )
        return PLACEHOLDER.sub(lambda m: values[m.group(0)], body)

    # -- the message
    def mime(self, recipient: Recipient, date: datetime | None = None) -> bytes:
        """The complete RFC 5322 message for `recipient`."""
        token = urls.recipient_token(self.signer, recipient.send_id)
        name = recipient.name or self.name_fallback
        encoded_token = token.encode("ascii") + b"=\r\n"
        values = {"r:text": encoded_token, "r:html": encoded_token}
        values["name:text"] = _qp_value(name)
        escaped = htmllib.escape(name)
        values["name:html"] = values["name:text"] if escaped == name else _qp_value(escaped)
        if self.times:
            values.update(self._encoded_times(recipient.timezone))
        body = self._body.copy()
        for index, key in self._slots:
            body[index] = values[key]
        personal = (
            f"Date: {self._date if date is None else rfc2822_date(date)}{CRLF}"
            f"To: {_address(recipient.name, recipient.email)}{CRLF}"
            f"Message-ID: <{recipient.send_id}.{self._mid}@{self._domain}>{CRLF}"
            f"List-Unsubscribe: <{urls.unsubscribe_url(self.base_url, token)}>{CRLF}"
        )
        return self._head + personal.encode("utf-8") + b"".join(body)
