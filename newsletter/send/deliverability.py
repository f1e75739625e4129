"""`newsletter check --deliverability`: the sender domain's SPF, DKIM and DMARC records, read from DNS
(dnspython), against what Gmail's and Yahoo's bulk-sender rules (2024) ask of anyone sending more than
a few thousand messages a day:

- SPF: one `v=spf1` record on the envelope (bounce) domain, not ending in `+all`;
- DKIM: messages signed by a key published at `<selector>._domainkey.<domain>`, matching the key file;
- DMARC: a `v=DMARC1` record at `_dmarc.<From domain>` (p=none is the least accepted), with SPF's or
  DKIM's domain aligned with the From domain;
- one-click unsubscribe (RFC 8058): every message carries List-Unsubscribe and List-Unsubscribe-Post.

The verdicts are a pure function of the records (`judge`); only `lookup_txt` touches the network.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver

from newsletter.errors import ConfigError

TxtLookup = Callable[[str], list[str]]  # name -> its TXT strings ([] when there are none)


@dataclass
class DomainReport:
    domain: str  # the From domain
    envelope_domain: str
    records: dict[str, list[str]] = field(default_factory=dict)  # name -> TXT strings found
    errors: list[str] = field(default_factory=list)  # missing for the bulk-sender rules
    warnings: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)


def resolver_lookup(nameserver: str = "", timeout: float = 5.0) -> TxtLookup:
    """A TXT lookup through the system's resolver, or through `nameserver` (host or host:port)."""
    if nameserver:
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
        resolver.nameservers = [host]
        if port:
            resolver.port = int(port)
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout

    def lookup(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            raise ConfigError(
                f"no answer from DNS for {name} within {timeout:g} s; check dns_nameserver"
            ) from None
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]  # type: ignore[attr-defined]

    return lookup


def judge(
    domain: str,
    lookup: TxtLookup,
    *,
    envelope_domain: str = "",
    dkim_selector: str = "",
    dkim_domain: str = "",
    dkim_public_key: str = "",
    transport: str = "smtp",
) -> DomainReport:
    """What the domain's records lack for bulk sending from `domain` (the From address's domain)."""
    envelope_domain = envelope_domain or domain
    report = DomainReport(domain, envelope_domain)

    def txt(name: str) -> list[str]:
        found = report.records[name] = lookup(name)
        return found

    # SPF, on the envelope sender's domain (that is the domain SPF checks).
    spf = [r for r in txt(envelope_domain) if r.lower().startswith("v=spf1")]
    if not spf:
        report.errors.append(
            f"SPF: no v=spf1 TXT record on {envelope_domain}; publish one that names your servers"
        )
    elif len(spf) > 1:
        report.errors.append(f"SPF: {len(spf)} v=spf1 records on {envelope_domain}; exactly one is allowed")
    elif re.search(r"(^|\s)\+?all\b", spf[0].lower()) and not re.search(r"[-~?]all\b", spf[0].lower()):
        report.warnings.append(f"SPF on {envelope_domain} ends in +all: it lets anyone send as you")
    else:
        report.ok.append(f"SPF: {spf[0]}")

    # DKIM.
    signing_domain = dkim_domain or domain
    if transport == "sendgrid" and not dkim_selector:
        dkim_selector = "s1"  # SendGrid's domain authentication publishes s1/s2._domainkey CNAMEs
    if not dkim_selector:
        report.errors.append(
            "DKIM: messages are not signed; set dkim_key_file and dkim_selector and publish the key"
        )
    else:
        name = f"{dkim_selector}._domainkey.{signing_domain}"
        keys = [r for r in txt(name) if "p=" in r]
        published = _tag(keys[0], "p") if keys else None
        if not keys:
            report.errors.append(f"DKIM: no key at {name}; publish the public key as a TXT record there")
        elif not published:
            report.errors.append(f"DKIM: the key at {name} is revoked (empty p=)")
        elif dkim_public_key and _b64(published) != _b64(dkim_public_key):
            report.errors.append(f"DKIM: the key at {name} is not the public half of dkim_key_file")
        else:
            report.ok.append(f"DKIM: key published at {name}")
        if not _aligned(signing_domain, domain):
            report.warnings.append(f"DKIM: d={signing_domain} is not aligned with the From domain {domain}")

    # DMARC.
    dmarc = [r for r in txt(f"_dmarc.{domain}") if r.lower().replace(" ", "").startswith("v=dmarc1")]
    if not dmarc:
        report.errors.append(
            f"DMARC: no v=DMARC1 record at _dmarc.{domain}; publish at least 'v=DMARC1; p=none'"
        )
    else:
        policy = (_tag(dmarc[0], "p") or "").lower()
        if policy not in ("none", "quarantine", "reject"):
            report.errors.append(
                f"DMARC at _dmarc.{domain}: p={policy or '(missing)'} must be none, quarantine or reject"
            )
        else:
            report.ok.append(f"DMARC: {dmarc[0]}")
    if not _aligned(envelope_domain, domain) and not (dkim_selector and _aligned(signing_domain, domain)):
        report.errors.append(
            f"DMARC alignment: neither SPF ({envelope_domain}) nor DKIM is aligned with the From domain "
            f"{domain}; use a bounce_address or DKIM domain under {domain}"
        )
    report.ok.append("one-click unsubscribe: List-Unsubscribe and List-Unsubscribe-Post on every message")
    return report


def public_key_of(key_file: Path | str) -> str:
    """The base64 DER public key of a PEM private key file (what the DKIM record's p= holds)."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(Path(key_file).read_bytes(), None)
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def sender_domains(site: Any) -> list[str]:
    """The From domains of the site's lists (else the default sender's), each once."""
    from newsletter.audience.lists import load_lists

    found = [m.sender_email.rpartition("@")[2].lower() for m in load_lists(site).lists if m.sender_email]
    if not found:
        from urllib.parse import urlsplit

        found = [(urlsplit(site.settings["base_url"]).hostname or "localhost").lower()]
    return list(dict.fromkeys(found))


def check_site(site: Any, domains: Iterable[str] = (), lookup: TxtLookup | None = None) -> list[DomainReport]:
    """The deliverability report of each sender domain of the site."""
    from newsletter.send import transport_name

    s = site.settings
    lookup = lookup or resolver_lookup(s["dns_nameserver"], float(s["send_timeout"]))
    public = ""
    if s["dkim_key_file"]:
        public = public_key_of(site.root / s["dkim_key_file"])
    envelope = s["bounce_address"].rpartition("@")[2].lower()
    return [
        judge(
            domain,
            lookup,
            envelope_domain=envelope,
            dkim_selector=s["dkim_selector"] if s["dkim_key_file"] else "",
            dkim_domain=s["dkim_domain"],
            dkim_public_key=public,
            transport=transport_name(s),
        )
        for domain in (list(domains) or sender_domains(site))
    ]


def _tag(record: str, name: str) -> str | None:
    for part in record.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key.strip().lower() == name:
            return "".join(value.split())
    return None


def _b64(value: str) -> str:
    return "".join(value.split())


def _aligned(a: str, b: str) -> bool:
    """Relaxed DMARC alignment, approximated: one domain is the other or under it."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)
