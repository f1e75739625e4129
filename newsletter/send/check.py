"""`newsletter check` for the send stage: is the chosen transport configured, is anything in doubt."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from newsletter.findings import CheckReport
from newsletter.send import transport_name


def check_site(site: Any) -> CheckReport:
    report = CheckReport("send")
    s = site.settings
    name = transport_name(s)
    if name == "sendgrid":
        if not s["sendgrid_api_key"]:
            report.errors.append(
                "transport = sendgrid but sendgrid_api_key is empty: set NEWSLETTER_SENDGRID_API_KEY"
            )
        host = urlparse(str(s["sendgrid_host"]))
        if host.scheme not in {"http", "https"} or not host.netloc:
            report.errors.append(
                f"sendgrid_host {s['sendgrid_host']!r}: expected a URL such as https://api.sendgrid.com"
            )
    elif name == "smtp":
        if not s["smtp_host"]:
            report.errors.append("transport = smtp but smtp_host is empty: set NEWSLETTER_SMTP_HOST")
        if s["smtp_username"] and not s["smtp_starttls"] and s["smtp_port"] != 465:
            report.warnings.append(
                "SMTP AUTH without STARTTLS sends the password in clear; set smtp_starttls = true"
            )
    else:
        folder = site.outbox_dir
        parent = folder if folder.exists() else folder.parent
        if not os.access(parent, os.W_OK):
            report.errors.append(f"outbox_dir {folder}: not writable")
    report.errors.extend(bounce_setting_errors(site))
    if s["send_timeout"] <= 0:
        report.errors.append(f"send_timeout {s['send_timeout']}: must be more than 0 seconds")
    where = {
        "sendgrid": s["sendgrid_host"],
        "smtp": f"{s['smtp_host']}:{s['smtp_port']}",
        "outbox": str(site.outbox_dir),
    }
    rows = [[name, where[name], f"{s['rate_per_second'] or '-'} /s, {s['rate_per_hour'] or '-'} /h"]]
    report.tables.append(("transport", ["transport", "where", "rate limits"], rows))
    return report


def bounce_setting_errors(site: Any) -> list[str]:
    """What is wrong with the VERP and DKIM settings (each error names its setting)."""
    from newsletter.errors import ConfigError
    from newsletter.send.dkim import DkimKey

    s = site.settings
    errors = []
    address = str(s["bounce_address"])
    if address and (address.count("@") != 1 or "+" in address or not address.split("@")[0]):
        errors.append(f"bounce_address {address!r}: expected local@domain without '+' (VERP adds it)")
    if s["dkim_key_file"]:
        try:
            DkimKey.load(site.root / s["dkim_key_file"], s["dkim_selector"], s["dkim_domain"])
        except ConfigError as exc:
            errors.append(str(exc))
    return errors
