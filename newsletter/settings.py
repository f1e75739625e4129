"""Settings: declared once here, read from the site's `newsletter.toml`, then `NEWSLETTER_*` variables.

Each setting is (name, default, help). The CLI's `newsletter config`, the validation below and the
README's configuration reference all come from `SETTINGS`; a test fails when one is undocumented.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.errors import ConfigError

CONFIG_FILE = "newsletter.toml"
LOCAL_CONFIG_FILE = "newsletter.local.toml"  # git-ignored: secrets for one machine
ENV_PREFIX = "NEWSLETTER_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: Callable[[str], Any] = str
    secret: bool = False
    choices: tuple[str, ...] = ()  # the values allowed, when only some are

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "sqlite:///newsletter.db",
        "SQLAlchemy URL of the store. A relative SQLite path is relative to the site folder. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    ),
    Setting(
        "base_url",
        "http://127.0.0.1:8000",
        "Public URL of the web app, used in tracking, unsubscribe and archive links.",
    ),
    Setting(
        "secret_key",
        "",
        "Key that signs tracking, unsubscribe and confirmation links and sessions. When empty, a random "
        "key is generated once into the site's .secret_key file (git-ignored).",
        secret=True,
    ),
    Setting("sendgrid_api_key", "", "SendGrid API key. When set, mail goes through SendGrid.", secret=True),
    Setting(
        "sendgrid_host",
        "https://api.sendgrid.com",
        "SendGrid API host (tests point it at a local Prism mock).",
    ),
    Setting(
        "sendgrid_webhook_public_key",
        "",
        "Base64 ECDSA P-256 public key of the signed SendGrid Event Webhook. When empty, the webhook "
        "refuses every post.",
    ),
    Setting(
        "webhook_max_age", 600, "Oldest accepted Event Webhook timestamp, in seconds (replay window).", int
    ),
    Setting("webhook_max_bytes", 2_000_000, "Largest accepted Event Webhook body, in bytes.", int),
    Setting("smtp_host", "", "SMTP server host. When set (and SendGrid is not), mail goes through SMTP."),
    Setting("smtp_port", 587, "SMTP server port.", int),
    Setting("smtp_username", "", "SMTP user name (empty: no AUTH)."),
    Setting("smtp_password", "", "SMTP password.", secret=True),
    Setting("smtp_starttls", True, "Use STARTTLS on the SMTP connection.", _bool),
    Setting(
        "smtp_connections",
        1,
        "SMTP connections one process sends over at once (each drains its own batches).",
        int,
    ),
    Setting(
        "bounce_address",
        "",
        "Envelope sender of SMTP (and outbox) messages, e.g. bounces@hub.example.org: each message goes "
        "out as bounces+<signed send token>@... (VERP), so a bounce names its send (empty: the From "
        "address).",
    ),
    Setting(
        "bounce_mailbox",
        "",
        "Mailbox that receives the bounces, read by `newsletter bounces pull` and `run`: "
        "imaps://user@host[:993]/FOLDER, imap://... (STARTTLS), pop3s://user@host[:995] or pop3://... "
        "(STLS); user URL-quoted (bounces%40hub.example.org). Empty: off.",
    ),
    Setting("bounce_mailbox_password", "", "Password of the bounce mailbox.", secret=True),
    Setting(
        "bounce_processed_folder",
        "processed",
        "IMAP folder recognised bounces and complaints are moved to (unrecognised mail stays untouched).",
    ),
    Setting("bounce_ca_file", "", "CA certificate file for the bounce mailbox's TLS (empty: the system's)."),
    Setting(
        "bounce_pull_minutes", 5, "Minutes between two reads of the bounce mailbox in `newsletter run`.", int
    ),
    Setting(
        "dkim_key_file",
        "",
        "PEM RSA private key that signs SMTP messages with DKIM (relative to the site; empty: no signing).",
    ),
    Setting("dkim_selector", "", "DKIM selector: the key is published at <selector>._domainkey.<domain>."),
    Setting("dkim_domain", "", "DKIM signing domain (d=); empty: the domain of the From address."),
    Setting(
        "dns_nameserver",
        "",
        "Name server `newsletter check --deliverability` asks, as host or host:port (empty: the system's).",
    ),
    Setting(
        "transport",
        "auto",
        "auto (SendGrid if its key is set, else SMTP if its host is set, else the outbox), sendgrid, smtp, "
        "outbox, or memory (kept in the process: tests and trying a site out).",
        choices=("auto", "sendgrid", "smtp", "outbox", "memory"),
    ),
    Setting("outbox_dir", "outbox", "Folder the outbox transport writes .eml files into (relative to site)."),
    Setting(
        "rate_per_second",
        0.0,
        "Most messages per second per transport, for all workers of the store together (0: no limit).",
        float,
    ),
    Setting(
        "rate_per_hour",
        0,
        "Most messages per sliding hour per transport, for all workers of the store together (0: no limit).",
        int,
    ),
    Setting("send_timeout", 30.0, "Seconds before a SendGrid or SMTP call times out.", float),
    Setting("send_retries", 5, "Retries of a SendGrid request refused with 429/5xx or not connected.", int),
    Setting(
        "send_lease",
        300,
        "Seconds after which a batch claimed by a worker that stopped renewing it is taken over.",
        int,
    ),
    Setting("feed_pull_minutes", 30, "Minutes between feed pulls in `newsletter run`.", int),
    Setting("feed_timeout", 20.0, "Seconds before a feed request times out.", float),
    Setting(
        "feed_host_delay", 1.0, "Seconds between two requests to the same feed host (politeness).", float
    ),
    Setting(
        "ip_privacy",
        "truncate",
        "How tracking stores client IPs: truncate (/24 and /48), hash, or none (store nothing).",
        choices=("truncate", "hash", "none"),
    ),
    Setting(
        "track_individual",
        True,
        "Tie opens and clicks to the subscriber (off: per-campaign counts only).",
        _bool,
    ),
    Setting(
        "hit_flush_interval",
        0.2,
        "Seconds between two batched writes of open and click hits (the most a crash can lose).",
        float,
    ),
    Setting(
        "hit_writer",
        "process",
        "Where open and click hits are stored: process (a writer process beside the web worker, so "
        "tracking never competes with answering) or thread (inside the web process).",
        choices=("process", "thread"),
    ),
    Setting("soft_bounce_limit", 3, "Soft bounces after which an address is treated as bounced.", int),
    Setting(
        "soft_bounce_window_days",
        30.0,
        "Days a soft bounce counts towards soft_bounce_limit (SMTP and bounce mailbox; older ones decay).",
        float,
    ),
    Setting("subscribe_rate_limit", 10, "Most subscribe form posts per client IP per hour.", int),
    Setting("confirm_max_age", 604800, "Seconds a double opt-in confirmation link stays valid.", int),
    Setting(
        "conversion_param",
        "",
        "Query parameter added to click redirects with a signed click reference for sign-on "
        "conversions (e.g. nlc; empty: off).",
    ),
    Setting("admin_session_hours", 12, "Hours a dashboard login lasts.", int),
    Setting("admin_login_attempts", 5, "Failed dashboard logins per email or IP before a pause.", int),
    Setting(
        "admin_login_window", 900, "Seconds the failed-login count looks back (and the pause lasts).", int
    ),
    Setting("host", "127.0.0.1", "Interface `newsletter serve` and `run` listen on."),
    Setting("port", 8000, "Port `newsletter serve` and `run` listen on.", int),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class Settings(Mapping[str, Any]):
    """Effective settings of one site: defaults < newsletter.toml < newsletter.local.toml < environment."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], site_dir: Path):
        self._values = values
        self.sources = sources
        self.site_dir = site_dir

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def masked(self) -> dict[str, str]:
        """Values for display, secrets masked."""
        shown: dict[str, str] = {}
        for s in SETTINGS:
            value = self._values[s.name]
            if s.secret and value:
                value = "****" + str(value)[-4:] if len(str(value)) > 12 else "****"
            shown[s.name] = str(value)
        return shown

    def replace(self, **changes: Any) -> Settings:
        values = dict(self._values)
        sources = dict(self.sources)
        for key, value in changes.items():
            if key not in _BY_NAME:
                raise KeyError(key)
            values[key] = value
            sources[key] = "override"
        return Settings(values, sources, self.site_dir)


def _coerce(setting: Setting, raw: Any, where: str) -> Any:
    if setting.choices and str(raw) not in setting.choices:
        allowed = ", ".join(setting.choices)
        raise ConfigError(f"{where}: setting {setting.name!r}: expected one of {allowed}; got {raw!r}")
    if setting.kind is str:
        return str(raw)
    if isinstance(raw, bool) and setting.kind is _bool:
        return raw
    try:
        return setting.kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: setting {setting.name!r}: {exc}; got {raw!r}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, with the file and line in the error."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_settings(site_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the effective settings for the site in `site_dir`."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}
    for filename in (CONFIG_FILE, LOCAL_CONFIG_FILE):
        path = site_dir / filename
        if not path.exists():
            continue
        data = read_toml(path)
        for key, raw in data.items():
            if isinstance(raw, dict | list):
                continue  # tables like [site] and [[feeds]] are site configuration, not settings
            if key not in _BY_NAME:
                known = ", ".join(sorted(_BY_NAME))
                raise ConfigError(f"{path}: unknown setting {key!r}; known settings: {known}")
            values[key] = _coerce(_BY_NAME[key], raw, str(path))
            sources[key] = filename
    for s in SETTINGS:
        if s.env in environ:
            values[s.name] = _coerce(s, environ[s.env], f"environment {s.env}")
            sources[s.name] = "env"
    values["database_url"] = _resolve_sqlite_path(values["database_url"], site_dir)
    if not values["secret_key"]:
        values["secret_key"] = _site_secret(site_dir)
        sources["secret_key"] = ".secret_key"
    values["base_url"] = str(values["base_url"]).rstrip("/")
    return Settings(values, sources, site_dir)


def _resolve_sqlite_path(url: str, site_dir: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((site_dir / url[len(prefix) :]).resolve())
    return url


def _site_secret(site_dir: Path) -> str:
    path = site_dir / ".secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(0o600)
    return key
