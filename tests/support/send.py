"""Fixtures for the send tests (registered in tests/conftest.py): Prism, a faulty SendGrid, aiosmtpd."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from newsletter.store import Store
from newsletter.store.tables import lists, subscribers, subscriptions

REPO = Path(__file__).resolve().parents[2]
PRISM_VERSION = "5.16.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- subscribers


def add_subscribers(
    store: Store,
    n: int,
    *,
    lists_: Sequence[str] = ("members",),
    languages: Sequence[str] = ("en", "fr", "es", "ru", "pt"),
    status: str = "confirmed",
    now: datetime,
    prefix: str = "person",
    timezone: str = "UTC",
    domain: str = "example.org",
) -> list[int]:
    """Insert `n` subscribers on `lists_` with languages in turn; returns their ids."""
    with store.write() as conn:
        list_ids = [conn.scalar(select(lists.c.id).where(lists.c.slug == slug)) for slug in lists_]
        assert all(list_ids), f"unknown list among {lists_}"
        emails = [f"{prefix}{i}@{domain}" for i in range(n)]
        conn.execute(
            subscribers.insert(),
            [
                {
                    "email": address,
                    "name": f"Person {i}" if i % 3 else "",
                    "language": languages[i % len(languages)],
                    "timezone": timezone,
                    "country": "",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i, address in enumerate(emails)
            ],
        )
        by_email = dict(
            conn.execute(
                select(subscribers.c.email, subscribers.c.id).where(subscribers.c.email.in_(emails))
            ).all()
        )
        ids = [by_email[address] for address in emails]
        conn.execute(
            subscriptions.insert(),
            [
                {
                    "subscriber_id": sid,
                    "list_id": lid,
                    "status": status,
                    "soft_bounces": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for sid in ids
                for lid in list_ids
            ],
        )
    return ids


# ---------------------------------------------------------------- Prism


def prism_binary() -> str:
    binary = os.environ.get("NEWSLETTER_TEST_PRISM", str(REPO / ".cache/prism/node_modules/.bin/prism"))
    if not Path(binary).exists() and shutil.which("npm"):
        subprocess.run(
            [
                "npm",
                "install",
                "--no-save",
                "--prefix",
                str(REPO / ".cache/prism"),
                f"@stoplight/prism-cli@{PRISM_VERSION}",
            ],
            check=True,
            capture_output=True,
        )
    if not Path(binary).exists():
        pytest.fail(f"Prism not found at {binary}: set NEWSLETTER_TEST_PRISM or install it with npm")
    return binary


def sendgrid_spec() -> str:
    given = os.environ.get("NEWSLETTER_TEST_SENDGRID_SPEC")
    if given:
        return given
    for candidate in (
        REPO.parent / "shared/sendgrid/mail_v3.openapi.json",
        Path("/work/shared/sendgrid/mail_v3.openapi.json"),
    ):
        if candidate.exists():
            return str(candidate)
    pytest.fail("SendGrid's spec not found: set NEWSLETTER_TEST_SENDGRID_SPEC")


@dataclass
class Prism:
    url: str
    log_path: Path
    _offset: int = 0

    def new_log(self) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        fresh, self._offset = text[self._offset :], len(text)
        return fresh

    def violations(self, log: str) -> list[str]:
        return [line for line in log.splitlines() if "violation" in line.lower()]


@pytest.fixture(scope="session")
def prism_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    """Prism mocking SendGrid's Mail Send spec on a free port (one per test session)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("prism") / "prism.log"
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "NO_COLOR": "1", "FORCE_COLOR": "0"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [prism_binary(), "mock", "-h", "127.0.0.1", "-p", str(port), sendgrid_spec()],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"Prism exited: {log_path.read_text()}")
            if "Prism is listening" in log_path.read_text(errors="replace"):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"Prism did not start: {log_path.read_text()}")
        yield Prism(f"http://127.0.0.1:{port}", log_path, len(log_path.read_text(errors="replace")))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def prism(prism_server: Prism) -> Iterator[Prism]:
    """Prism, failing the test on any violation it logged while the test ran."""
    prism_server.new_log()
    yield prism_server
    time.sleep(0.2)  # Prism logs after answering
    log = prism_server.new_log()
    bad = prism_server.violations(log)
    if bad:
        pytest.fail("Prism found spec violations:\n" + "\n".join(bad[:20]))


# ---------------------------------------------------------------- a faulty SendGrid


@dataclass
class FaultySendGrid:
    """A stand-in for SendGrid's Mail Send that answers from a script, then 202."""

    url: str
    script: list[tuple[Any, ...]] = field(
        default_factory=list
    )  # ("status", code, headers, body) | ("hang", s) | ("drop",)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self) -> tuple[Any, ...]:
        with self.lock:
            return self.script.pop(0) if self.script else ("status", 202, {}, b"")


def _handler(stand_in: FaultySendGrid) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            step = stand_in.next_step()
            with stand_in.lock:
                stand_in.requests.append({"path": self.path, "body": body, "step": step[0]})
            if step[0] == "hang":
                time.sleep(step[1])
                self.close_connection = True
                return
            if step[0] == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            _, code, headers, payload = step
            with stand_in.lock:
                stand_in.answered.append(code)
            self.send_response(code)
            if code == 202:
                self.send_header("X-Message-Id", f"msg{len(stand_in.requests)}")
            for name, value in headers.items():
                self.send_header(name, value)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def faulty_sendgrid() -> Iterator[FaultySendGrid]:
    """A scripted SendGrid stand-in on 127.0.0.1 for 429, 5xx, hangs and dropped connections."""
    stand_in = FaultySendGrid(url="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    server.daemon_threads = True
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- SMTP


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)  # (from, to, data)
    sessions: int = 0
    arrived: list[float] = field(default_factory=list)  # time.time() of each message's DATA

    def count_by_recipient(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, rcpts, _ in self.messages:
            for r in rcpts:
                counts[r] = counts.get(r, 0) + 1
        return counts


class _Collector:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:  # noqa: N802
        self.box.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.box.arrived.append(time.time())
        self.box.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        )
        return f"250 OK queued as q{len(self.box.messages)}"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    """aiosmtpd's authenticator for the test servers: user `sender`, password `secret`."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"sender"
        and auth_data.password == b"secret"
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """aiosmtpd on a free port with AUTH (user `sender`, password `secret`) collecting every message."""
    from aiosmtpd.controller import Controller

    port = free_port()
    box = Mailbox("127.0.0.1", port)
    controller = Controller(
        _Collector(box),
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    yield box
    controller.stop()


def parse_send_id(data: bytes) -> int:
    """The ledger id in a message's Message-ID (`<send_id.occurrence.campaign.lang@domain>`)."""
    match = re.search(rb"^Message-ID: <(\d+)\.", data, re.MULTILINE | re.IGNORECASE)
    assert match, "no Message-ID"
    return int(match.group(1))


# ---------------------------------------------------------------- a site to send from

# The example site's digest, plus a campaign at a local hour and one to two lists, in a schedules file
# of their own so the send tests do not depend on the rest of the example calendar.
SCHEDULES = """\
events: []
campaigns:
  - id: weekly-digest
    template: digest
    audience: {lists: [members]}
    languages: [en, fr, es, ru, pt]
    trigger: {every: monday 09:00 Europe/London, max_items: 10}
    late_by: 12h
  - id: morning-digest
    template: digest
    audience: {lists: [members]}
    languages: [en, fr, es, ru, pt]
    trigger: {every: monday 09:00 Europe/London}
    local_time: "09:00"
    late_by: 1h
  - id: two-lists
    template: digest
    audience: {lists: [members, key-populations]}
    languages: [en, fr]
    trigger: {every: monday 09:00 Europe/London}
"""


@pytest.fixture
def send_site(site: Any) -> Any:
    """The example site with the send tests' schedules and no transport configured (the outbox)."""
    (site.root / "schedules.yaml").write_text(SCHEDULES, encoding="utf-8")
    return site


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (for STARTTLS tests)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Iterator[tuple[Mailbox, Path]]:
    """aiosmtpd requiring STARTTLS before anything (AUTH included); yields the box and the CA file."""
    import ssl

    from aiosmtpd.controller import Controller

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    port = free_port()
    box = Mailbox("127.0.0.1", port)
    controller = Controller(
        _Collector(box),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    controller.start()
    yield box, cert
    controller.stop()
