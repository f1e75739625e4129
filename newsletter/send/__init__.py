"""The send stage: the ledger, the engine that fills and drains it, and the transports."""

from __future__ import annotations

from typing import Any

from newsletter.send.transports.base import Transport

__all__ = ["get_transport", "get_transports", "transport_name"]


def transport_name(settings: Any) -> str:
    """The transport the settings choose: `auto` means SendGrid if keyed, else SMTP if a host, else outbox."""
    chosen = str(settings["transport"])
    if chosen != "auto":
        return chosen
    if settings["sendgrid_api_key"]:
        return "sendgrid"
    if settings["smtp_host"]:
        return "smtp"
    return "outbox"


def get_transport(site: Any) -> Transport:
    """The site's transport, built from its settings."""
    s = site.settings
    name = transport_name(s)
    if name == "sendgrid":
        from newsletter.send.transports.sendgrid import SendGridTransport

        return SendGridTransport(
            s["sendgrid_api_key"], s["sendgrid_host"], timeout=s["send_timeout"], retries=s["send_retries"]
        )
    if name == "smtp":
        from newsletter.errors import ConfigError
        from newsletter.send.transports.smtp import SMTPTransport

        if not s["smtp_host"]:
            raise ConfigError("transport = smtp but smtp_host is empty: set NEWSLETTER_SMTP_HOST")
        dkim = None
        if s["dkim_key_file"]:
            from newsletter.send.dkim import DkimKey

            dkim = DkimKey.load(site.root / s["dkim_key_file"], s["dkim_selector"], s["dkim_domain"])
        return SMTPTransport(
            s["smtp_host"],
            s["smtp_port"],
            username=s["smtp_username"],
            password=s["smtp_password"],
            starttls=s["smtp_starttls"],
            timeout=s["send_timeout"],
            bounce_address=s["bounce_address"],
            dkim=dkim,
        )
    if name == "memory":
        from newsletter.send.transports.memory import MemoryTransport

        return MemoryTransport()
    from newsletter.send.transports.outbox import OutboxTransport

    return OutboxTransport(site.outbox_dir, bounce_address=s["bounce_address"])


def get_transports(site: Any) -> list[Transport]:
    """The transports one process drains with at once: `smtp_connections` for SMTP, else one."""
    count = max(1, int(site.settings["smtp_connections"])) if transport_name(site.settings) == "smtp" else 1
    return [get_transport(site) for _ in range(count)]
