"""CSV import of subscribers into a list: streamed, one transaction, every rejected row explained.

Each row's consent status comes from the file (see `formats`) or the import's `status`, never a
guess; the stated `consent` basis goes into every consent record. Rows that are unsubscribed,
bounced, cleaned or complained put the address on the suppression list instead of mailing it.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from newsletter import audit
from newsletter.audience import formats
from newsletter.audience.formats import PROFILE
from newsletter.audience.lists import list_id
from newsletter.audience.subscribers import (
    check_country,
    check_timezone,
    clean_text,
    email_hash,
    normalize_email,
)
from newsletter.errors import InputError
from newsletter.site import Site
from newsletter.store import now_utc
from newsletter.store.bulk import insert_many
from newsletter.store.tables import (
    SUPPRESSED_STATUSES,
    consents,
    lists,
    subscribers,
    subscriptions,
    suppressions,
)

CHUNK = 2000


@dataclass
class Rejected:
    line: int
    reason: str
    email: str = ""


@dataclass
class ImportReport:
    file: str
    list_slug: str
    encoding: str = "utf-8"
    accepted: int = 0  # new subscriber, or new on this list
    updated: int = 0  # known subscriber whose details changed
    unchanged: int = 0
    suppressed: int = 0  # rows whose status keeps them from being mailed (suppression list)
    format: str = "csv"
    statuses: dict[str, int] = field(default_factory=dict)  # rows stored, per status
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "list": self.list_slug,
            "encoding": self.encoding,
            "accepted": self.accepted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "suppressed": self.suppressed,
            "format": self.format,
            "statuses": dict(sorted(self.statuses.items())),
            "rejected": len(self.rejected),
            "rejected_rows": [r.__dict__ for r in self.rejected],
        }


def detect_encoding(path: Path) -> str:
    """utf-8-sig when the bytes are UTF-8 (BOM or not), else cp1252; InputError when neither decodes
    (cp1252 leaves five bytes undefined). Reads in blocks: memory flat."""
    for encoding, name in (("utf-8", "utf-8-sig"), ("cp1252", "cp1252")):
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        with path.open("rb") as fh:
            try:
                while block := fh.read(1 << 20):
                    decoder.decode(block)
                    offset += len(block)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                if encoding == "cp1252":
                    at = offset - len(block) + exc.start
                    raise InputError(
                        f"{path}: neither UTF-8 nor cp1252 text (byte 0x{exc.object[exc.start]:02x} at offset"
                        f" {at}); save the file as UTF-8"
                    ) from None
                continue
        return name
    raise AssertionError("unreachable")


def _records(fh: io.TextIOBase, path: Path) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
    sample = fh.read(8192)
    fh.seek(0)
    try:
        delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is taken from the sniffer: from a header alone it cannot tell that quotes
    # are doubled inside quoted cells (Mailchimp's TAGS are), which every spreadsheet does.
    reader = csv.reader(fh, csv.excel, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; expected a header row with an email column") from None
    except csv.Error as exc:
        raise InputError(f"{path}:1: unreadable header ({exc})") from None

    def rows() -> Iterator[tuple[int, list[str] | str]]:
        """(line, cells), or (line, why) for a line the csv module cannot read (a NUL byte...)."""
        start = reader.line_num + 1
        while True:
            try:
                record: list[str] | str = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                record = f"unreadable line ({exc})"
            yield start, record
            start = reader.line_num + 1

    return header, rows()


def import_csv(
    site: Site,
    path: Path | str,
    list_slug: str,
    *,
    consent: str,
    status: str | None = None,
    audit_as: tuple[str, str] | None = None,
) -> ImportReport:
    """Import `path` into list `list_slug` in one transaction; returns the report.

    `consent`: the basis of consent, recorded with every row ("imported from the 2021 partner list");
    `status`: the status of rows whose file states none (confirmed, unconfirmed, ...: see
    `formats.STATUS_WORDS`); `audit_as`: (actor, via) of the audit entry, written in the transaction.
    """
    path = Path(path)
    basis = " ".join((consent or "").split())
    if not basis:
        raise InputError(
            "--consent: state the basis of consent for these people, e.g. "
            '--consent "signed up at the 2021 partner meeting"'
        )
    default_status = None
    if status is not None:
        try:
            default_status = formats.parse_status(status)
        except InputError as exc:
            raise InputError(f"--{exc}") from None
        if default_status is None:
            raise InputError(f"--status {status!r}: use one of {formats.STATUS_HELP}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    encoding = detect_encoding(path)
    report = ImportReport(file=str(path), list_slug=list_slug, encoding=encoding.replace("-sig", ""))
    store = site.store
    with path.open(encoding=encoding, newline="") as fh, store.write() as conn:
        lid = list_id(conn, list_slug)
        header, records = _records(fh, path)
        try:
            lay = formats.layout(header)
        except InputError as exc:
            raise InputError(f"{path}:1: {exc}") from None
        report.format = lay.kind
        if not lay.has_status and default_status is None:
            raise InputError(
                f"{path}:1: the file states no consent status (no status column) and none was given: "
                f"add --status with one of {formats.STATUS_HELP}, as these people agreed; "
                "it is never guessed"
            )
        importer = _Importer(site, conn, lid, path, basis, default_status, report)
        chunk: list[tuple[int, formats.Row]] = []
        for line, record in records:
            if isinstance(record, str):
                report.rejected.append(Rejected(line, record))
                continue
            if not any(cell.strip() for cell in record):
                continue
            try:
                chunk.append((line, formats.read_row(lay, record)))
            except InputError as exc:
                email = record[lay.columns.index("email")] if len(record) == len(lay.columns) else ""
                report.rejected.append(Rejected(line, str(exc), email.strip()))
                continue
            if len(chunk) >= CHUNK:
                importer.flush(chunk)
                chunk = []
        if chunk:
            importer.flush(chunk)
        if audit_as is not None:
            summary = report.as_dict()
            details = {k: summary[k] for k in ("file", "format", "accepted", "updated", "unchanged")}
            details.update(suppressed=report.suppressed, rejected=len(report.rejected), consent=basis)
            audit.record(conn, audit_as[0], "import", list_slug, details, audit_as[1])
    report.rejected.sort(key=lambda r: r.line)
    return report


class _Importer:
    """Validates and writes rows a chunk at a time, on the import's one connection."""

    def __init__(
        self,
        site: Site,
        conn: Connection,
        lid: int,
        path: Path,
        basis: str,
        default_status: str | None,
        report: ImportReport,
    ):
        self.site, self.conn, self.lid, self.report = site, conn, lid, report
        self.basis, self.default_status = basis, default_status
        self.now: datetime = now_utc()
        self.detail = path.name
        row = conn.execute(select(lists.c.default_language, lists.c.languages).where(lists.c.id == lid)).one()
        self.default_language = row.default_language
        self.languages = {lang.lower(): lang for lang in site.languages}
        self.list_languages = list(row.languages)

    def _clean(self, line: int, row: formats.Row) -> dict[str, Any] | None:
        try:
            values: dict[str, Any] = {"email": normalize_email(row.email)}
            profile = row.profile
            if name := clean_text(profile.get("name") or ""):
                values["name"] = name
            if profile.get("language"):
                values["language"] = self._language(profile["language"])
            if profile.get("timezone"):
                values["timezone"] = check_timezone(profile["timezone"])
            if profile.get("country"):
                values["country"] = check_country(profile["country"])
            attrs = {clean_text(str(k)): _clean_value(v) for k, v in row.attributes.items()}
            attrs = {k: v for k, v in attrs.items() if k and v not in ("", None)}
            if attrs:
                values["attributes"] = attrs
            status = row.status or self.default_status
            if status is None:
                raise InputError(
                    "the row states no consent status (empty, or listmonk's 'enabled', which says "
                    f"nothing about this list): fill it in or give --status ({formats.STATUS_HELP})"
                )
            values["status"] = status
            values["notes"] = row.notes
            return values
        except InputError as exc:
            self.report.rejected.append(Rejected(line, str(exc), row.email))
            return None

    def _language(self, value: str) -> str:
        lang = value.strip().replace("_", "-").lower()
        found = self.languages.get(lang) or self.languages.get(lang.split("-")[0])
        if found is None:
            raise InputError(f"unknown language {value!r}; this site offers {', '.join(self.site.languages)}")
        return found

    def _consent(self, subscriber_id: int, line: int, values: dict[str, Any]) -> dict[str, Any]:
        parts = [self.basis, f"{self.detail} line {line}", f"status {values['status']}", *values["notes"]]
        return {
            "subscriber_id": subscriber_id,
            "list_id": self.lid,
            "action": "import",
            "source": "import",
            "detail": "; ".join(parts)[:500],
            "ip": "",
            "at": self.now,
        }

    def flush(self, chunk: list[tuple[int, formats.Row]]) -> None:
        conn = self.conn
        cleaned: dict[str, tuple[int, dict[str, Any]]] = {}
        for line, raw in chunk:
            values = self._clean(line, raw)
            if values is None:
                continue
            if values["email"] in cleaned:
                first = cleaned[values["email"]][0]
                self.report.rejected.append(Rejected(line, f"duplicate of line {first}", values["email"]))
                continue
            cleaned[values["email"]] = (line, values)
        if not cleaned:
            return
        emails = list(cleaned)
        hashes = {e: email_hash(e) for e in emails}
        suppressed = set(
            conn.scalars(
                select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(list(hashes.values())))
            )
        )
        existing = {
            r.email: r for r in conn.execute(select(subscribers).where(subscribers.c.email.in_(emails)))
        }
        subs = (
            {
                r.subscriber_id: r.status
                for r in conn.execute(
                    select(subscriptions.c.subscriber_id, subscriptions.c.status).where(
                        subscriptions.c.list_id == self.lid,
                        subscriptions.c.subscriber_id.in_([r.id for r in existing.values()]),
                    )
                )
            }
            if existing
            else {}
        )

        new_people: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        new_subs: list[tuple[str, int, str]] = []  # (email, line, status)
        for email, (line, values) in cleaned.items():
            status = values["status"]
            person = existing.get(email)
            if status in formats.SUPPRESSING:
                self._withdrawn(email, line, values, person, subs, suppressed, hashes[email])
                continue
            if hashes[email] in suppressed:
                self.report.rejected.append(
                    Rejected(
                        line, "address is on the suppression list (forgotten, bounced or complained)", email
                    )
                )
                continue
            if person is None:
                new_people.append(
                    {
                        "email": email,
                        "name": values.get("name", ""),
                        "language": values.get("language", self.default_language),
                        "timezone": values.get("timezone", "UTC"),
                        "country": values.get("country", ""),
                        "attributes": values.get("attributes", {}),
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
                new_subs.append((email, line, status))
                self.report.accepted += 1
                self._count(status)
                continue
            if person.updated_at == self.now:
                self.report.rejected.append(Rejected(line, "duplicate of an earlier row in this file", email))
                continue
            patch = {k: values[k] for k in PROFILE if k in values and values[k] != getattr(person, k)}
            if "attributes" in values:
                merged = {**(person.attributes or {}), **values["attributes"]}
                if merged != (person.attributes or {}):
                    patch["attributes"] = merged
            current = subs.get(person.id)
            if current is None:
                new_subs.append((email, line, status))
            # Marked as seen in this import (updated_at), so a later duplicate row is recognised.
            changed.append(
                {
                    "b_id": person.id,
                    "updated_at": self.now,
                    **{k: patch.get(k, getattr(person, k)) for k in (*PROFILE, "attributes")},
                }
            )
            if current is None:
                self.report.accepted += 1
                self._count(status)
            elif patch:
                self.report.updated += 1
            else:
                self.report.unchanged += 1
            # An existing subscription keeps its status: a re-import never resubscribes someone who
            # unsubscribed, bounced or complained (SUPPRESSED_STATUSES), nor confirms for them.

        if new_people:
            insert_many(conn, subscribers, new_people)
        if changed:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == bindparam("b_id"))
                .values(
                    updated_at=bindparam("updated_at"),
                    name=bindparam("name"),
                    language=bindparam("language"),
                    timezone=bindparam("timezone"),
                    country=bindparam("country"),
                    attributes=bindparam("attributes"),
                ),
                changed,
            )
        if new_subs:
            ids = dict(
                conn.execute(
                    select(subscribers.c.email, subscribers.c.id).where(
                        subscribers.c.email.in_([e for e, _, _ in new_subs])
                    )
                )
                .tuples()
                .all()
            )
            insert_many(
                conn,
                subscriptions,
                [
                    {
                        "subscriber_id": ids[e],
                        "list_id": self.lid,
                        "status": status,
                        "soft_bounces": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                    for e, _, status in new_subs
                ],
            )
            insert_many(
                conn, consents, [self._consent(ids[e], line, cleaned[e][1]) for e, line, _ in new_subs]
            )

    def _count(self, status: str) -> None:
        self.report.statuses[status] = self.report.statuses.get(status, 0) + 1

    def _withdrawn(
        self,
        email: str,
        line: int,
        values: dict[str, Any],
        person: Any,
        subs: dict[int, str],
        suppressed: set[str],
        hashed: str,
    ) -> None:
        """A row that is unsubscribed, bounced or complained: suppress the address; a person already
        stored gets that status on this list and a consent record. No one new is stored for it."""
        conn, status = self.conn, values["status"]
        if hashed not in suppressed:
            conn.execute(
                suppressions.insert().values(
                    email_hash=hashed, reason=formats.SUPPRESSING[status], created_at=self.now
                )
            )
            suppressed.add(hashed)
        self.report.suppressed += 1
        self._count(status)
        if person is None:
            return
        current = subs.get(person.id)
        if current is None:
            conn.execute(
                subscriptions.insert().values(
                    subscriber_id=person.id,
                    list_id=self.lid,
                    status=status,
                    soft_bounces=0,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )
        elif current not in SUPPRESSED_STATUSES:
            conn.execute(
                update(subscriptions)
                .where(subscriptions.c.subscriber_id == person.id, subscriptions.c.list_id == self.lid)
                .values(status=status, updated_at=self.now)
            )
        else:
            return
        subs[person.id] = status
        conn.execute(consents.insert().values(**self._consent(person.id, line, values)))


def _clean_value(value: Any) -> Any:
    """An attribute value as stored: text without control characters; JSON values (listmonk) kept."""
    return clean_text(value, 1000) if isinstance(value, str) else value
