"""`newsletter check` for tracking and the public pages: the webhook key and the tracking settings."""

from __future__ import annotations

from newsletter.findings import CheckReport
from newsletter.site import Site
from newsletter.track import webhook


def check_site(site: Site) -> CheckReport:
    s = site.settings
    report = CheckReport("track")
    key = str(s["sendgrid_webhook_public_key"])
    if not key:
        report.warnings.append(
            "sendgrid_webhook_public_key is empty: POST /webhooks/sendgrid refuses every post "
            "(paste the key SendGrid shows under Mail Settings > Signed Event Webhook)"
        )
    else:
        try:
            webhook._public_key(key)
        except webhook.Refused as exc:
            report.errors.append(f"{exc.reason}; paste the base64 key SendGrid shows for the signed webhook")
    if s["bounce_mailbox"]:
        from newsletter.errors import ConfigError
        from newsletter.track.mailbox import Mailbox

        try:
            Mailbox.parse(s["bounce_mailbox"])
        except ConfigError as exc:
            report.errors.append(str(exc))
        if not s["bounce_mailbox_password"]:
            report.warnings.append("bounce_mailbox is set but bounce_mailbox_password is empty")
    for name in ("webhook_max_age", "webhook_max_bytes", "confirm_max_age"):
        if int(s[name]) <= 0:
            report.errors.append(f"{name}: must be positive; got {s[name]}")
    if float(s["hit_flush_interval"]) <= 0:
        report.errors.append(f"hit_flush_interval: must be positive; got {s['hit_flush_interval']}")
    if not str(s["base_url"]).startswith("https://"):
        report.warnings.append(
            f"base_url {s['base_url']} is not https: fine for a test site, but links and form cookies "
            "travel in clear text"
        )
    report.tables.append(
        (
            "tracking",
            ["setting", "value"],
            [
                ["ip_privacy", str(s["ip_privacy"])],
                ["track_individual", str(s["track_individual"])],
                ["hit_writer", str(s["hit_writer"])],
                ["hit_flush_interval", f"{s['hit_flush_interval']} s (the most a crash can lose)"],
            ],
        )
    )
    return report
