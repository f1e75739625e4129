"""DKIM signing of outgoing SMTP messages with dkimpy (SendGrid signs its own; the outbox does not send).

The key is a PEM RSA private key file (2048 bits or more) named by `dkim_key_file`; the public half is
published at `<dkim_selector>._domainkey.<domain>` (`newsletter check --deliverability` looks it up).
Headers signed: the ones a list message must keep intact, List-Unsubscribe included (RFC 8058 asks
for it to be signed, and Gmail's one-click unsubscribe requires it).
"""

from __future__ import annotations

from pathlib import Path

import dkim

from newsletter.errors import ConfigError

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)


class DkimKey:
    """Signs messages for one (domain, selector) with one private key."""

    def __init__(self, key: bytes, selector: str, domain: str = ""):
        if not selector:
            raise ConfigError("dkim_key_file is set but dkim_selector is empty")
        self.key = key
        self.selector = selector.encode("ascii")
        self.domain = domain  # empty: the domain of each message's From address
        # Fail now, on a message of nothing, rather than on the first real one.
        self.sign(b"From: a@example.org\r\nSubject: check\r\n\r\nbody\r\n", "example.org")

    @classmethod
    def load(cls, path: Path | str, selector: str, domain: str = "") -> DkimKey:
        try:
            key = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"dkim_key_file {path}: cannot read it ({exc.strerror})") from None
        return cls(key, selector, domain)

    def sign(self, message: bytes, from_domain: str) -> bytes:
        """`message` with its DKIM-Signature header (d= dkim_domain, else `from_domain`) prepended."""
        try:
            header = dkim.sign(
                message,
                self.selector,
                (self.domain or from_domain).encode("idna"),
                self.key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h for h in SIGNED_HEADERS if _has(message, h)] or [b"From"],
            )
        except (dkim.DKIMException, ValueError, UnicodeError) as exc:
            raise ConfigError(f"dkim_key_file: cannot sign with this key ({exc})") from None
        return header + message


def _has(message: bytes, name: bytes) -> bool:
    head = message.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name.lower() + b":") or (b"\n" + name.lower() + b":") in head
