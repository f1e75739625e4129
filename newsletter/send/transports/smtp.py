"""SMTP with the standard library: one connection reused across messages, STARTTLS, AUTH.

One MIME message per recipient (the renderer builds it). The envelope goes in three steps (MAIL,
RCPT, DATA) so a failure is placed: before DATA nothing was handed over and the message may be tried
again; a connection lost inside DATA may have been accepted, so that message is in doubt.

A 5xx at RCPT refuses that one recipient for good (the engine suppresses the address as a hard
bounce); a 4xx at RCPT defers that one recipient (a soft bounce, tried again later). With a
`bounce_address`, the envelope sender of each message is its VERP address (verp.py); with a DKIM key,
each message is signed (dkim.py).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from newsletter.errors import TransportAuthError
from newsletter.send.transports.base import BatchResult, InDoubtError, Mode, TransientError
from newsletter.send.verp import envelope_sender


class SMTPTransport:
    """Sends each recipient's message over one reused SMTP connection."""

    name = "smtp"
    mode: Mode = "message"
    batch_size = 100

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        bounce_address: str = "",
        dkim: Any = None,
    ):
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context()
        self.bounce_address = bounce_address
        self.dkim = dkim  # newsletter.send.dkim.DkimKey, or None
        self._conn: smtplib.SMTP | None = None
        self.connections = 0  # connections opened (the benchmark shows reuse)

    def _connect(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = None
        try:
            # host given to the constructor: STARTTLS checks the certificate against it
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            conn.ehlo()
            if self.starttls:
                conn.starttls(context=self.tls_context)
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as err:
            _close(conn)
            raise TransportAuthError(
                f"SMTP server {self.host}:{self.port} refused user {self.username!r} "
                f"({err.smtp_code} {_text(err.smtp_error)}); fix smtp_username/smtp_password"
            ) from None
        except smtplib.SMTPNotSupportedError as err:
            _close(conn)
            raise TransportAuthError(
                f"SMTP server {self.host}:{self.port}: {err}; check smtp_starttls"
            ) from None
        except (OSError, smtplib.SMTPException) as err:
            _close(conn)
            raise TransientError(f"cannot connect to SMTP server {self.host}:{self.port}: {err}") from None
        assert conn is not None
        self.connections += 1
        return conn

    def send_batch(self, prepared: Any, recipients: Sequence[Any]) -> BatchResult:
        result = BatchResult()
        date = datetime.now(UTC)  # the Date header: when it is handed over, not when it was rendered
        for r in recipients:
            sender = prepared.from_email
            if self.bounce_address:
                sender = envelope_sender(prepared.signer, self.bounce_address, r.send_id)
            data = prepared.mime(r, date)
            if self.dkim is not None:
                data = self.dkim.sign(data, prepared.from_email.rpartition("@")[2])
            outcome = self._send_one(sender, r.email, data)
            if outcome.startswith("refused: "):
                result.failed[r.send_id] = outcome[len("refused: ") :]
                if outcome.startswith("refused: SMTP RCPT"):
                    result.refused_recipients.add(r.send_id)
            elif outcome.startswith("deferred: "):
                result.deferred[r.send_id] = outcome[len("deferred: ") :]
            else:
                result.message_ids[r.send_id] = outcome
        return result

    def _send_one(self, sender: str, to: str, data: bytes) -> str:
        for fresh in (self._conn is None, True):
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            try:
                code, reply = conn.mail(sender)
                if code != 250:
                    conn.rset()
                    return self._refused_or_retry(code, reply, f"MAIL FROM:<{sender}>")
                code, reply = conn.rcpt(to)
                if code not in (250, 251):
                    conn.rset()
                    if 400 <= code < 500:  # this recipient only, for now: the next one may pass
                        return f"deferred: SMTP RCPT TO:<{to}>: {code} {_text(reply)}"
                    return self._refused_or_retry(code, reply, f"RCPT TO:<{to}>")
                break
            except (OSError, smtplib.SMTPException) as err:
                # A reused connection the server closed meanwhile: open a new one, once.
                self._drop()
                if fresh:
                    raise TransientError(f"SMTP connection lost before DATA: {err}") from None
        try:
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as err:
            conn.rset()
            return self._refused_or_retry(err.smtp_code, err.smtp_error, "DATA")
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            raise InDoubtError(f"SMTP connection lost during DATA for {to}: {err}") from None
        return _text(reply)[:200] or "250"

    def _refused_or_retry(self, code: int, reply: bytes | str, step: str) -> str:
        if 400 <= code < 500:
            raise TransientError(f"SMTP {step}: {code} {_text(reply)} (temporary)")
        return f"refused: SMTP {step}: {code} {_text(reply)}"

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        conn.close()
