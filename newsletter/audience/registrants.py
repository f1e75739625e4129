"""Webinar registrants from a platform's export: parsed (pure), then stored for that event's reminders.

The export's columns, matched case-insensitively: Email (required), First Name, Last Name (or Name),
Registration Time, Approval Status, and our own `language`; `timezone` and `country` when present.
A registrant who is not a subscriber gets a `subscribers` row with no subscription, so only audiences
with `registered_for:` reach them, never a list; the consent record says the registration was for
that webinar. An existing subscriber's subscriptions and profile are left as they are: someone who
unsubscribed stays unsubscribed from every list.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from newsletter.audience.importer import Rejected
from newsletter.audience.subscribers import check_country, check_timezone, email_hash, normalize_email
from newsletter.errors import InputError
from newsletter.store import Store
from newsletter.store.bulk import insert_many
from newsletter.store.tables import consents, registrations, subscribers, suppressions

COLUMNS = {
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "first name": "first_name",
    "last name": "last_name",
    "name": "name",
    "full name": "name",
    "registration time": "registered_at",
    "registration date": "registered_at",
    "registered at": "registered_at",
    "approval status": "approval",
    "status": "approval",
    "language": "language",
    "lang": "language",
    "timezone": "timezone",
    "time zone": "timezone",
    "country": "country",
    "country/region": "country",
}
APPROVALS = {
    "": "approved",
    "approved": "approved",
    "pending": "pending",
    "pending approval": "pending",
    "denied": "denied",
    "rejected": "denied",
    "declined": "denied",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%b %d, %Y %I:%M:%S %p",
    "%b %d, %Y %I:%M %p",
    "%d.%m.%Y %H:%M",
)


@dataclass(frozen=True)
class Registrant:
    line: int
    email: str
    name: str
    language: str | None  # None: the session's language, else the site's default
    approval: str
    registered_at: datetime | None
    timezone: str | None = None
    country: str | None = None


@dataclass
class Parsed:
    registrants: list[Registrant] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM (UTF-16 with a BOM too, as some exports are), else cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_time(text: str) -> datetime | None:
    """A registration time as exports write it; naive times are UTC. ValueError names the value."""
    value = text.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for fmt in TIME_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"registration time {value!r}: expected e.g. 2021-04-10 09:15:00") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _language(value: str, languages: Sequence[str]) -> str | None:
    text = value.strip().replace("_", "-").lower()
    if not text:
        return None
    offered = {lang.lower(): lang for lang in languages}
    found = offered.get(text) or offered.get(text.split("-")[0])
    if found is None:
        raise InputError(f"unknown language {value.strip()!r}; this site offers {', '.join(languages)}")
    return found


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    header = next((line for line in text.splitlines() if "mail" in line.lower()), "")
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is sniffed: quoting is the standard one (a header shows none of it).
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=delimiter)
    start = 1
    try:
        for record in reader:
            yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: unreadable CSV ({exc})") from None


def parse_registrants(text: str, languages: Sequence[str]) -> Parsed:
    """Registrants of an export's text; every bad row in `rejected` with its line and reason.

    Lines before the header (platforms put a report title and the webinar's details there) are
    skipped: the header is the first row with an Email column. InputError when there is none.
    """
    out = Parsed()
    rows = _rows(text.lstrip("\ufeff").replace("\x00", ""))
    columns: list[str] | None = None
    seen: dict[str, int] = {}
    for line, record in rows:
        if columns is None:
            names = [COLUMNS.get(c.strip().lstrip("\ufeff").lower(), "") for c in record]
            if "email" in names:
                columns = names
            continue
        if not any(cell.strip() for cell in record):
            continue
        if len(record) < len(columns) and not all(c == "" for c in columns[len(record) :]):
            out.rejected.append(
                Rejected(line, f"row has {len(record)} fields but the header has {len(columns)}")
            )
            continue
        raw = {name: cell for name, cell in zip(columns, record, strict=False) if name}
        try:
            email = normalize_email(raw.get("email", ""))
            if email in seen:
                raise InputError(f"duplicate of line {seen[email]}")
            approval_text = raw.get("approval", "").strip().lower()
            if approval_text not in APPROVALS:
                shown = raw.get("approval", "").strip()
                raise InputError(f"approval status {shown!r}: expected approved, pending or denied")
            try:
                registered_at = parse_time(raw.get("registered_at", ""))
            except ValueError as exc:
                raise InputError(str(exc)) from None
            name = raw.get("name", "").strip() or " ".join(
                part for part in (raw.get("first_name", "").strip(), raw.get("last_name", "").strip()) if part
            )
            tz = raw.get("timezone", "").strip()
            country = raw.get("country", "").strip()
            registrant = Registrant(
                line=line,
                email=email,
                name=name[:200],
                language=_language(raw.get("language", ""), languages),
                approval=APPROVALS[approval_text],
                registered_at=registered_at,
                timezone=check_timezone(tz) if tz else None,
                country=check_country(country) if country else None,
            )
        except InputError as exc:
            out.rejected.append(Rejected(line, str(exc), raw.get("email", "").strip()))
            continue
        seen[email] = line
        out.registrants.append(registrant)
    if columns is None:
        raise InputError("no header row with an Email column (expected Email, First Name, Last Name, ...)")
    return out


@dataclass
class RegistrationReport:
    file: str
    target: str  # event or event/session
    registered: int = 0  # new registrations
    updated: int = 0  # approval or registration time changed
    unchanged: int = 0
    new_people: int = 0  # registrants who are not subscribers: reminders of this event only
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "target": self.target,
            "registered": self.registered,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "new_people": self.new_people,
            "rejected": len(self.rejected),
            "rejected_rows": [r.__dict__ for r in self.rejected],
        }


def store_registrants(
    store: Store,
    parsed: Parsed,
    *,
    event_id: str,
    session_id: str,
    default_language: str,
    source: str,
    now: datetime,
) -> RegistrationReport:
    """Write `parsed` as registrations for `event_id` (one session, or "" for all) in one transaction."""
    target = f"{event_id}/{session_id}" if session_id else event_id
    report = RegistrationReport(file=source, target=target, rejected=list(parsed.rejected))
    people = parsed.registrants
    with store.write() as conn:
        for start in range(0, len(people), 1000):
            _store_chunk(
                conn, people[start : start + 1000], report, event_id, session_id, default_language, now
            )
    report.rejected.sort(key=lambda r: r.line)
    return report


def _store_chunk(
    conn: Connection,
    chunk: list[Registrant],
    report: RegistrationReport,
    event_id: str,
    session_id: str,
    default_language: str,
    now: datetime,
) -> None:
    target = f"{event_id}/{session_id}" if session_id else event_id
    hashes = {email_hash(p.email): p for p in chunk}
    blocked = set(
        conn.scalars(select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(hashes)))
    )
    chunk = [p for h, p in hashes.items() if h not in blocked or _reject(report, p)]
    emails = [p.email for p in chunk]
    known = dict(
        conn.execute(select(subscribers.c.email, subscribers.c.id).where(subscribers.c.email.in_(emails)))
        .tuples()
        .all()
    )
    new = [p for p in chunk if p.email not in known]
    if new:
        insert_many(
            conn,
            subscribers,
            [
                {
                    "email": p.email,
                    "name": p.name,
                    "language": p.language or default_language,
                    "timezone": p.timezone or "UTC",
                    "country": p.country or "",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for p in new
            ],
        )
        known.update(
            conn.execute(
                select(subscribers.c.email, subscribers.c.id).where(
                    subscribers.c.email.in_([p.email for p in new])
                )
            )
            .tuples()
            .all()
        )
        report.new_people += len(new)
    ids = [known[p.email] for p in chunk]
    stored = {
        r.subscriber_id: r
        for r in conn.execute(
            select(registrations).where(
                registrations.c.event_id == event_id,
                registrations.c.session == session_id,
                registrations.c.subscriber_id.in_(ids),
            )
        )
    }
    fresh, consent = [], []
    for p in chunk:
        sid = known[p.email]
        row = stored.get(sid)
        if row is None:
            fresh.append(
                {
                    "event_id": event_id,
                    "session": session_id,
                    "subscriber_id": sid,
                    "approval": p.approval,
                    "registered_at": p.registered_at,
                    "source": report.file,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            consent.append(
                {
                    "subscriber_id": sid,
                    "list_id": None,
                    "action": "register",
                    "source": "registration",
                    "detail": f"registration for the webinar {target} (its reminders only, no list); "
                    f"{report.file} line {p.line}",
                    "ip": "",
                    "at": now,
                }
            )
            report.registered += 1
        elif (row.approval, row.registered_at) != (p.approval, p.registered_at):
            conn.execute(
                update(registrations)
                .where(registrations.c.id == row.id)
                .values(
                    approval=p.approval, registered_at=p.registered_at, source=report.file, updated_at=now
                )
            )
            report.updated += 1
        else:
            report.unchanged += 1
    if fresh:
        insert_many(conn, registrations, fresh)
        insert_many(conn, consents, consent)


def _reject(report: RegistrationReport, person: Registrant) -> bool:
    reason = "address is on the suppression list (forgotten, bounced, complained or unsubscribed)"
    report.rejected.append(Rejected(person.line, reason, person.email))
    return False
