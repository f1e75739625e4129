"""The bounce mailbox over IMAP or POP3 (standard library): read each message, hand it to a handler,
move what it recognised, and leave everything else exactly as it was.

IMAP: messages are read with `BODY.PEEK[]`, which does not set \\Seen; a recognised one is moved
(`UID MOVE`, else `UID COPY` + `\\Deleted` + `UID EXPUNGE` of that UID only, with UIDPLUS) to the
processed folder, created when missing. Nothing else is ever flagged, expunged or deleted, and the
session ends with LOGOUT, never CLOSE (which expunges every \\Deleted message).
POP3 has no folders: a recognised message is deleted (DELE) after it was applied; the others are read
with `TOP n <many>`, which, unlike RETR, leaves them unread on servers that keep flags (Dovecot).
"""

from __future__ import annotations

import imaplib
import poplib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from newsletter.errors import ConfigError, NewsletterError

SCHEMES = {"imaps": 993, "imap": 143, "pop3s": 995, "pop3": 110}
FETCH_CHUNK = 50  # messages per UID FETCH
_FETCHED_UID = re.compile(rb"UID (\d+)")


class MailboxError(NewsletterError):
    """The bounce mailbox cannot be reached, logged into or read."""


@dataclass(frozen=True)
class Mailbox:
    scheme: str
    host: str
    port: int
    user: str
    folder: str = "INBOX"

    @classmethod
    def parse(cls, url: str) -> Mailbox:
        """From the `bounce_mailbox` setting: imaps://user@host[:port]/FOLDER (user URL-quoted)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in SCHEMES:
            raise ConfigError(
                f"bounce_mailbox {url!r}: scheme must be one of {', '.join(SCHEMES)} (e.g. "
                f"imaps://bounces%40hub.example.org@mail.example.org/INBOX)"
            )
        if not parts.hostname or not parts.username:
            raise ConfigError(f"bounce_mailbox {url!r}: give user@host")
        try:
            port = parts.port or SCHEMES[parts.scheme]
        except ValueError:
            raise ConfigError(f"bounce_mailbox {url!r}: bad port") from None
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        if parts.scheme.startswith("pop3") and folder != "INBOX":
            raise ConfigError(f"bounce_mailbox {url!r}: POP3 has no folders; leave the path out")
        return cls(parts.scheme, parts.hostname, port, unquote(parts.username), folder)


@dataclass
class Pulled:
    seen: int = 0
    recognised: int = 0
    left: int = 0
    errors: list[str] = field(default_factory=list)


# For a chunk of messages, True for each one recognised and applied (so it may be moved).
Handler = Callable[[list[bytes]], list[bool]]


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or None)


def pull(
    box: Mailbox,
    password: str,
    handler: Handler,
    *,
    processed_folder: str = "processed",
    context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
) -> Pulled:
    """Hand every message in the mailbox to `handler`; move (IMAP) or delete (POP3) the recognised."""
    context = context or tls_context()
    try:
        if box.scheme.startswith("imap"):
            return _pull_imap(box, password, handler, processed_folder, context, timeout)
        return _pull_pop3(box, password, handler, context, timeout)
    except (OSError, imaplib.IMAP4.error, poplib.error_proto, ssl.SSLError) as exc:
        raise MailboxError(f"bounce mailbox {box.scheme}://{box.host}:{box.port}: {exc}") from None


def _pull_imap(
    box: Mailbox,
    password: str,
    handler: Handler,
    processed: str,
    context: ssl.SSLContext,
    timeout: float,
) -> Pulled:
    result = Pulled()
    if box.scheme == "imaps":
        conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(box.host, box.port, ssl_context=context, timeout=timeout)
    else:
        conn = imaplib.IMAP4(box.host, box.port, timeout=timeout)
        conn.starttls(ssl_context=context)
    try:
        try:
            conn.login(box.user, password)
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"bounce mailbox: {box.user!r} refused ({exc}); check the password") from None
        capabilities = _capabilities(conn)
        typ, _ = conn.select(_quote(box.folder))
        if typ != "OK":
            raise MailboxError(f"bounce mailbox: no folder {box.folder!r}")
        typ, data = conn.uid("SEARCH", "ALL")
        uids = data[0].split() if typ == "OK" and data and data[0] else []
        created = False
        for start in range(0, len(uids), FETCH_CHUNK):
            fetched = _fetch(conn, uids[start : start + FETCH_CHUNK])
            result.seen += len(fetched)
            for uid, recognised in zip(
                [u for u, _ in fetched], _apply(handler, fetched, result), strict=True
            ):
                if not recognised:
                    result.left += 1
                    continue
                if not created:
                    conn.create(_quote(processed))  # "already exists" is fine
                    created = True
                _move(conn, uid, processed, capabilities)
                result.recognised += 1
        # No CLOSE: it would expunge every message flagged \Deleted, the owner's too. LOGOUT does not.
    finally:
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    return result


def _apply(handler: Handler, fetched: list[tuple[bytes, bytes]], result: Pulled) -> list[bool]:
    """The handler's verdicts for a chunk; none recognised (so nothing moved) when it fails."""
    try:
        verdicts = handler([raw for _, raw in fetched])
    except NewsletterError as exc:
        result.errors.append(f"messages {fetched[0][0].decode()}-{fetched[-1][0].decode()}: {exc}")
        return [False] * len(fetched)
    return list(verdicts)


def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    typ, data = conn.capability()  # asked again: the list grows after login
    if typ != "OK" or not data or not data[0]:
        return set(conn.capabilities)
    return {c.upper() for c in data[0].decode("ascii", "replace").split()}


def _fetch(conn: imaplib.IMAP4, uids: list[bytes]) -> list[tuple[bytes, bytes]]:
    typ, data = conn.uid("FETCH", b",".join(uids).decode(), "(UID BODY.PEEK[])")
    if typ != "OK":
        return []
    out = []
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            found = _FETCHED_UID.search(item[0])
            if found:
                out.append((found.group(1), item[1]))
    return out


def _move(conn: imaplib.IMAP4, uid: bytes, folder: str, capabilities: set[str]) -> None:
    target = _quote(folder)
    if "MOVE" in capabilities:
        typ, data = conn.uid("MOVE", uid.decode(), target)
        if typ == "OK":
            return
    typ, data = conn.uid("COPY", uid.decode(), target)
    if typ != "OK":
        raise MailboxError(f"bounce mailbox: cannot copy UID {uid.decode()} to {folder!r}: {data}")
    conn.uid("STORE", uid.decode(), "+FLAGS.SILENT", r"(\Deleted)")
    if "UIDPLUS" in capabilities:  # expunges this UID only, never mail the owner flagged
        conn.uid("EXPUNGE", uid.decode())


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pull_pop3(
    box: Mailbox, password: str, handler: Handler, context: ssl.SSLContext, timeout: float
) -> Pulled:
    result = Pulled()
    if box.scheme == "pop3s":
        conn: poplib.POP3 = poplib.POP3_SSL(box.host, box.port, context=context, timeout=timeout)
    else:
        conn = poplib.POP3(box.host, box.port, timeout=timeout)
        conn.stls(context=context)
    try:
        try:
            conn.user(box.user)
            conn.pass_(password)
        except poplib.error_proto as exc:
            raise MailboxError(f"bounce mailbox: {box.user!r} refused ({exc}); check the password") from None
        count = len(conn.list()[1])
        for start in range(1, count + 1, FETCH_CHUNK):
            fetched = []
            for number in range(start, min(start + FETCH_CHUNK, count + 1)):
                # TOP with more lines than any message: the whole message, without marking it read.
                _, lines, _ = conn.top(number, 10_000_000)
                fetched.append((str(number).encode(), b"\r\n".join(lines) + b"\r\n"))
            result.seen += len(fetched)
            for (number_text, _), recognised in zip(fetched, _apply(handler, fetched, result), strict=True):
                if recognised:
                    conn.dele(int(number_text))
                    result.recognised += 1
                else:
                    result.left += 1
        conn.quit()  # the deletions take effect only here
    except BaseException:
        conn.close()  # no QUIT: nothing is deleted
        raise
    return result
