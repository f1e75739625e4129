"""`newsletter check --deliverability` against a real DNS server on 127.0.0.1 (dnslib) with good and bad
records, and DKIM signatures made by the SMTP transport verified by dkimpy."""

from __future__ import annotations

import email
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver

from newsletter.render.message import Prepared, Recipient
from newsletter.send.deliverability import judge, public_key_of, resolver_lookup
from newsletter.send.dkim import DkimKey
from newsletter.send.transports.smtp import SMTPTransport
from newsletter.send.verp import send_of
from newsletter.tokens import Signer
from tests.support.send import Mailbox, free_port

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)


def _key(path: Path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return public_key_of(path)


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "dkim.pem"
    return path, _key(path)


def _txt(value: str) -> str:
    # Zone-file TXT strings are at most 255 characters each.
    chunks = [value[i : i + 200] for i in range(0, len(value), 200)]
    return " ".join(f'"{c}"' for c in chunks)


@pytest.fixture
def dns_server(dkim_key: tuple[Path, str], tmp_path: Path) -> Iterator[str]:
    """A DNS server on 127.0.0.1: good.example has everything, bad.example SPF twice and no DMARC."""
    _, public = dkim_key
    other = _key(tmp_path / "other.pem")
    zone = f"""
good.example. 60 IN TXT "v=spf1 ip4:127.0.0.1 -all"
good.example. 60 IN TXT "google-site-verification=abc"
nl._domainkey.good.example. 60 IN TXT {_txt("v=DKIM1; k=rsa; p=" + public)}
_dmarc.good.example. 60 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@good.example"
bad.example. 60 IN TXT "v=spf1 +all"
bad.example. 60 IN TXT "v=spf1 ip4:192.0.2.1 -all"
nl._domainkey.bad.example. 60 IN TXT {_txt("v=DKIM1; k=rsa; p=" + other)}
_dmarc.bad.example. 60 IN TXT "v=DMARC1; p=bogus"
open.example. 60 IN TXT "v=spf1 +all"
"""
    port = free_port()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    server = DNSServer(ZoneResolver(zone), port=port, address="127.0.0.1", logger=quiet)
    server.start_thread()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()
        server.server.server_close()


def test_a_domain_with_spf_dkim_and_dmarc_passes(dns_server: str, dkim_key: tuple[Path, str]) -> None:
    lookup = resolver_lookup(dns_server)
    report = judge("good.example", lookup, dkim_selector="nl", dkim_public_key=dkim_key[1])
    assert report.errors == [] and report.warnings == []
    assert any(line.startswith("SPF: v=spf1 ip4:127.0.0.1") for line in report.ok)
    assert any("nl._domainkey.good.example" in line for line in report.ok)


def test_what_a_bad_domain_lacks_is_named(dns_server: str, dkim_key: tuple[Path, str]) -> None:
    lookup = resolver_lookup(dns_server)
    bad = judge("bad.example", lookup, dkim_selector="nl", dkim_public_key=dkim_key[1])
    assert any("2 v=spf1 records" in e for e in bad.errors)
    assert any("not the public half of dkim_key_file" in e for e in bad.errors)
    assert any("p=bogus" in e for e in bad.errors)
    nothing = judge("missing.example", lookup)
    assert [e.split(":")[0] for e in nothing.errors] == ["SPF", "DKIM", "DMARC"]
    assert "set dkim_key_file and dkim_selector" in nothing.errors[1]
    wide_open = judge("open.example", lookup, dkim_selector="nl")
    assert any("+all" in w for w in wide_open.warnings)
    assert any("no key at nl._domainkey.open.example" in e for e in wide_open.errors)
    # An envelope (bounce) domain unrelated to the From domain, unsigned: DMARC cannot align.
    unaligned = judge("good.example", lookup, envelope_domain="bounces.other.example")
    assert any(e.startswith("DMARC alignment") for e in unaligned.errors)


def test_check_deliverability_command(
    dns_server: str, dkim_key: tuple[Path, str], site_dir: Path, site_env: dict[str, str]
) -> None:
    key_path, _ = dkim_key
    env = {
        **site_env,
        "PATH": "/usr/bin:/bin",
        "NEWSLETTER_DNS_NAMESERVER": dns_server,
        "NEWSLETTER_DKIM_KEY_FILE": str(key_path),
        "NEWSLETTER_DKIM_SELECTOR": "nl",
        "NEWSLETTER_BOUNCE_ADDRESS": "bounces@good.example",
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",
    }
    command = [sys.executable, "-m", "newsletter", "check", "--deliverability", "--site", str(site_dir)]
    good = subprocess.run([*command, "--domain", "good.example"], env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "good.example" in good.stdout and "missing" not in good.stdout
    bad = subprocess.run(
        [*command, "--domain", "bad.example", "--json"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    [report] = json.loads(bad.stdout)
    # SPF is looked up on the envelope sender's domain (good.example here): only DKIM and DMARC fail.
    assert report["domain"] == "bad.example" and [e.split()[0] for e in report["errors"]] == [
        "DKIM:",
        "DMARC",
    ]


def _prepared() -> Prepared:
    return Prepared(
        language="en",
        subject="Weekly digest",
        preheader="",
        from_name="HLM Hub",
        from_email="news@good.example",
        html="<p>Hello %%name%%</p>",
        text="Hello %%name%%",
        links=[],
        campaign_id="weekly-digest",
        occurrence_id=3,
        base_url="http://127.0.0.1:8000",
        signer=Signer("test-secret-key-0123456789"),
        now=NOW,
    )


def _dns(public: str) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl._domainkey.good.example."
        return f"v=DKIM1; k=rsa; p={public}".encode()

    return lookup


def test_a_signed_message_verifies_with_dkimpy(dkim_key: tuple[Path, str]) -> None:
    key_path, public = dkim_key
    message = _prepared().mime(Recipient(7, "reader@example.org", "Reader", "en", 1, "UTC"), NOW)
    signed = DkimKey.load(key_path, "nl").sign(message, "good.example")
    assert signed.startswith(b"DKIM-Signature:") and signed.endswith(message)
    assert dkim.verify(signed, dnsfunc=_dns(public))
    header = email.message_from_bytes(signed)["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in "".join(header.split()).split(";") if "=" in t)
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe"} <= set(
        tags["h"].lower().split(":")
    )
    assert not dkim.verify(signed.replace(b"Subject: ", b"Subject: Re: ", 1), dnsfunc=_dns(public))


def test_the_smtp_transport_signs_and_sends_from_the_verp_address(
    dkim_key: tuple[Path, str], smtp_server: Mailbox
) -> None:
    key_path, public = dkim_key
    transport = SMTPTransport(
        smtp_server.host,
        smtp_server.port,
        username="sender",
        password="secret",
        starttls=False,
        bounce_address="bounces@good.example",
        dkim=DkimKey.load(key_path, "nl"),
    )
    prepared = _prepared()
    try:
        result = transport.send_batch(prepared, [Recipient(41, "reader@example.org", "", "en", 1, "UTC")])
    finally:
        transport.close()
    assert set(result.message_ids) == {41}
    [(sender, rcpts, data)] = smtp_server.messages
    assert send_of(prepared.signer, sender, "bounces@good.example") == 41 and rcpts == ["reader@example.org"]
    assert dkim.verify(data, dnsfunc=_dns(public))
