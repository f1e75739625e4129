"""What an import file's columns mean: our CSV, Mailchimp's audience exports, listmonk's export.

Pure functions: a header becomes a `Layout`; a record becomes a `Row` (the profile fields, the
attributes, and the consent status the file states). Nothing is guessed: a row whose status the file
does not state takes the import's `--status`, and without one it is refused.

- **CSV**: `email`, `name`, `language`, `timezone`, `country`, `status`; other columns are attributes.
- **Mailchimp** (a header with "Email Address" and Mailchimp's system columns such as LEID or
  MEMBER_RATING): its subscribed, unsubscribed (UNSUB_TIME) and cleaned (CLEAN_TIME) files state
  their status by which file they are. "First Name" + "Last Name" make the name, TIMEZONE and CC
  the timezone and country; OPTIN_TIME and CONFIRM_TIME go into the consent record; the other system
  columns are dropped; merge fields become attributes.
- **listmonk** (`email`, `name`, `attributes` as a JSON object; its export adds `uuid`, `status`,
  `created_at`, `updated_at`): `blocklisted` and `disabled` are unsubscribed; `enabled` says nothing
  about consent to this list, so it takes `--status`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from newsletter.errors import InputError

# Status as written in a file -> the subscription status stored (None: the file does not say).
STATUS_WORDS: dict[str, str | None] = {
    "subscribed": "confirmed",
    "confirmed": "confirmed",
    "unconfirmed": "unconfirmed",
    "pending": "unconfirmed",
    "unsubscribed": "unsubscribed",
    "bounced": "bounced",
    "cleaned": "bounced",
    "complained": "complained",
    "blocklisted": "unsubscribed",
    "disabled": "unsubscribed",
    "enabled": None,
}
# Statuses whose address goes on the suppression list (never mailed again, from any list).
SUPPRESSING = {"unsubscribed": "unsubscribed", "bounced": "bounced", "complained": "complained"}
STATUS_HELP = "subscribed, confirmed, unconfirmed, pending, unsubscribed, bounced, cleaned, complained"

ALIASES = {
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "mail": "email",
    "name": "name",
    "full name": "name",
    "language": "language",
    "lang": "language",
    "locale": "language",
    "timezone": "timezone",
    "time zone": "timezone",
    "tz": "timezone",
    "country": "country",
    "status": "status",
}
PROFILE = ("name", "language", "timezone", "country")

MAILCHIMP_MARKERS = {"MEMBER_RATING", "LEID", "EUID", "OPTIN_TIME", "LAST_CHANGED"}
MAILCHIMP_FIELDS = {
    "Email Address": "email",
    "First Name": "first_name",
    "Last Name": "last_name",
    "TIMEZONE": "timezone",
    "CC": "country",
    "LANGUAGE": "language",
    "OPTIN_TIME": "optin_time",
    "CONFIRM_TIME": "confirm_time",
}
MAILCHIMP_DROPPED = {
    "MEMBER_RATING",
    "OPTIN_IP",
    "CONFIRM_IP",
    "LATITUDE",
    "LONGITUDE",
    "GMTOFF",
    "DSTOFF",
    "REGION",
    "LAST_CHANGED",
    "LEID",
    "EUID",
    "UNSUB_TIME",
    "UNSUB_CAMPAIGN_TITLE",
    "UNSUB_CAMPAIGN_ID",
    "UNSUB_REASON",
    "UNSUB_REASON_OTHER",
    "CLEAN_TIME",
    "CLEAN_CAMPAIGN_TITLE",
    "CLEAN_CAMPAIGN_ID",
}
LISTMONK_DROPPED = {"uuid", "id", "created_at", "updated_at"}


@dataclass(frozen=True)
class Layout:
    """How to read the records of one file."""

    kind: str  # csv, mailchimp, listmonk
    columns: tuple[str, ...]  # per position: a field name, "attr:<name>", or "" (dropped)
    file_status: str | None = None  # Mailchimp: the status its file kind states

    @property
    def has_status(self) -> bool:
        return self.file_status is not None or "status" in self.columns


@dataclass
class Row:
    """One record, read: profile values, attributes, the stated status, notes for the consent."""

    email: str
    profile: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str | None = None  # a stored status, or None when the file does not say
    notes: list[str] = field(default_factory=list)


def layout(header: list[str]) -> Layout:
    """The layout of a header row; InputError when it has no email column or a column twice."""
    names = [h.strip() for h in header]
    if "Email Address" in names and MAILCHIMP_MARKERS & set(names):
        return _mailchimp(names)
    lowered = [n.lower() for n in names]
    kind = "listmonk" if "attributes" in lowered and "email" in lowered else "csv"
    columns: list[str] = []
    for name, low in zip(names, lowered, strict=True):
        if kind == "listmonk" and low in LISTMONK_DROPPED:
            columns.append("")
        elif kind == "listmonk" and low == "attributes":
            columns.append("attributes")
        elif low in ALIASES:
            columns.append(ALIASES[low])
        else:
            columns.append(f"attr:{name}")
    if "email" not in columns:
        raise InputError(f"no email column in the header {header!r}; name one column 'email'")
    _no_twice(columns, names)
    return Layout(kind, tuple(columns))


def _mailchimp(names: list[str]) -> Layout:
    columns = []
    for name in names:
        if name in MAILCHIMP_FIELDS:
            columns.append(MAILCHIMP_FIELDS[name])
        elif name in MAILCHIMP_DROPPED or name.upper() in MAILCHIMP_DROPPED:
            columns.append("")
        else:
            columns.append(f"attr:{name}")
    _no_twice(columns, names)
    status = "unsubscribed" if "UNSUB_TIME" in names else "bounced" if "CLEAN_TIME" in names else "confirmed"
    return Layout("mailchimp", tuple(columns), file_status=status)


def _no_twice(columns: list[str], names: list[str]) -> None:
    seen: dict[str, str] = {}
    for column, name in zip(columns, names, strict=True):
        if not column:
            continue
        if column in seen:
            raise InputError(f"column {name!r} appears twice in the header (as {seen[column]!r} too)")
        seen[column] = name


def parse_status(value: str) -> str | None:
    """The stored status a file's status cell states, None for a blank or `enabled`; else InputError."""
    word = value.strip().lower()
    if not word:
        return None
    if word not in STATUS_WORDS:
        raise InputError(f"status {value.strip()[:40]!r} is not one of {STATUS_HELP}")
    return STATUS_WORDS[word]


def read_row(lay: Layout, record: list[str]) -> Row:
    """One record as a `Row` (values stripped; email not yet validated). InputError says what is wrong."""
    if len(record) != len(lay.columns):
        raise InputError(
            f"row has {len(record)} fields but the header has {len(lay.columns)} "
            "(check quotes and delimiters)"
        )
    values: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for column, cell in zip(lay.columns, record, strict=True):
        text = cell.strip()
        if not column or not text:
            continue
        if column.startswith("attr:"):
            attributes[column[5:]] = text
        elif column == "attributes":
            attributes.update(_json_object(text))
        else:
            values[column] = text
    row = Row(email=values.get("email", ""), attributes=attributes)
    if not row.email:
        raise InputError("no email address in this row")
    first, last = values.get("first_name", ""), values.get("last_name", "")
    if first or last:
        row.profile["name"] = f"{first} {last}".strip()
    for key in PROFILE:
        if values.get(key):
            row.profile[key] = values[key]
    row.status = parse_status(values["status"]) if "status" in values else lay.file_status
    for key, label in (("optin_time", "opted in"), ("confirm_time", "confirmed")):
        if values.get(key):
            row.notes.append(f"{label} {values[key][:40]}")
    return row


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"attributes: not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise InputError("attributes: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise InputError(
            f'attributes: expected a JSON object such as {{"city": "Nairobi"}}, got {text[:40]!r}'
        )
    return value
