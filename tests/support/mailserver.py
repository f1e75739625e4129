"""The real Postfix + Dovecot that `.ci/mailserver.sh` sets up on 127.0.0.1 (registered in conftest).

Its facts (ports, the bounce mailbox's user and generated password, the CA file) are read from
$NEWSLETTER_TEST_MAILSERVER (default /etc/newsletter-test/mailserver.json). The bounce mailbox is
emptied before each test that takes the fixture: the tests own this server.
"""

from __future__ import annotations

import email
import imaplib
import json
import os
import smtplib
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

INFO = os.environ.get("NEWSLETTER_TEST_MAILSERVER", "/etc/newsletter-test/mailserver.json")


@dataclass
class MailServer:
    domain: str
    smtp_host: str
    smtp_port: int
    imap_port: int
    imap_starttls_port: int
    pop3_port: int
    bounce_user: str
    bounce_password: str
    ca_file: str
    maildirs: str
    smtp_source: str
    tag: str  # unique per test, for the addresses it uses

    def address(self, kind: str, n: int = 0) -> str:
        """good / deferred / refused / (anything else: unknown, bounced by Postfix) addresses."""
        return f"{kind}-{self.tag}-{n}@{self.domain}"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def imap(self) -> imaplib.IMAP4_SSL:
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.imap_port, ssl_context=self.context(), timeout=30)
        conn.login(self.bounce_user, self.bounce_password)
        return conn

    def mailbox_url(self, scheme: str = "imaps", folder: str = "INBOX") -> str:
        port = {"imaps": self.imap_port, "imap": self.imap_starttls_port, "pop3s": self.pop3_port}[scheme]
        path = f"/{folder}" if scheme.startswith("imap") else ""
        return f"{scheme}://{quote(self.bounce_user, safe='')}@127.0.0.1:{port}{path}"

    def settings(self, **more: Any) -> dict[str, Any]:
        """Site settings for sending through this Postfix and reading its bounce mailbox."""
        return {
            "transport": "smtp",
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "smtp_starttls": False,
            "bounce_address": f"bounces@{self.domain}",
            "bounce_mailbox": self.mailbox_url(),
            "bounce_mailbox_password": self.bounce_password,
            "bounce_ca_file": self.ca_file,
            **more,
        }

    def folder(self, name: str = "INBOX") -> list[tuple[bytes, bytes, bytes]]:
        """(uid, flags, message) of every message in a folder of the bounce mailbox."""
        conn = self.imap()
        try:
            typ, _ = conn.select(f'"{name}"', readonly=True)
            if typ != "OK":
                return []
            _, data = conn.uid("SEARCH", "ALL")
            uids = data[0].split() if data and data[0] else []
            out = []
            for uid in uids:
                _, fetched = conn.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
                head, body = fetched[0]  # type: ignore[misc]
                flags = head.split(b"FLAGS (", 1)[1].split(b")", 1)[0]
                flags = b" ".join(f for f in flags.split() if f != rb"\Recent")  # per session
                out.append((uid, flags, body))
            return out
        finally:
            conn.logout()

    def wait_for(
        self, count: int, timeout: float = 60.0, name: str = "INBOX"
    ) -> list[tuple[bytes, bytes, bytes]]:
        """Wait until the folder holds `count` messages (Postfix delivers its DSNs within a second)."""
        deadline = time.monotonic() + timeout
        found = self.folder(name)
        while len(found) < count and time.monotonic() < deadline:
            time.sleep(0.3)
            found = self.folder(name)
        assert len(found) >= count, f"{len(found)} messages in {name}, expected {count}"
        return found

    def send_plain(self, raw: bytes, to: str | None = None, sender: str = "") -> None:
        """Put a message into the bounce mailbox (or to `to`) through Postfix."""
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as smtp:
            smtp.sendmail(sender or f"someone@{self.domain}", [to or self.bounce_user], raw)

    def empty(self) -> None:
        """Remove every message from the bounce mailbox and the good* Maildir (test set-up only)."""
        for sub in ("new", "cur"):
            for path in (Path(self.maildirs) / "good" / sub).glob("*"):
                path.unlink(missing_ok=True)
        conn = self.imap()
        try:
            _, folders = conn.list()
            for line in folders or []:
                name = (
                    line.decode().rsplit(' "/" ', 1)[-1].strip().strip('"') if isinstance(line, bytes) else ""
                )
                if not name:
                    continue
                typ, exists = conn.select(f'"{name}"')
                if typ != "OK":
                    continue
                if exists and exists[0] not in (b"0", None):
                    conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                    conn.expunge()
                conn.close()
                if name != "INBOX":
                    conn.delete(f'"{name}"')
        finally:
            conn.logout()

    def delivered(self, address: str = "") -> list[email.message.Message]:
        """Messages delivered to good* addresses (one shared Maildir), to `address` if given."""
        found = []
        for sub in ("new", "cur"):
            for path in (Path(self.maildirs) / "good" / sub).glob("*"):
                message = email.message_from_bytes(path.read_bytes())
                if address in str(message.get("To", "")):
                    found.append(message)
        return found


@pytest.fixture
def mailserver() -> Iterator[MailServer]:
    path = Path(INFO)
    if not path.exists():
        pytest.fail(f"no mail server: {path} is missing; run `bash .ci/mailserver.sh` as root")
    info = json.loads(path.read_text())
    server = MailServer(
        domain=info["domain"],
        smtp_host=info["smtp_host"],
        smtp_port=int(info["smtp_port"]),
        imap_port=int(info["imap_port"]),
        imap_starttls_port=int(info["imap_starttls_port"]),
        pop3_port=int(info["pop3_port"]),
        bounce_user=info["bounce_user"],
        bounce_password=info["bounce_password"],
        ca_file=info["ca_file"],
        maildirs=info["maildirs"],
        smtp_source=info["smtp_source"],
        tag=uuid.uuid4().hex[:8],
    )
    try:
        server.empty()
    except (OSError, imaplib.IMAP4.error) as exc:
        pytest.fail(f"mail server at 127.0.0.1 not answering ({exc}); run `bash .ci/mailserver.sh` as root")
    yield server
