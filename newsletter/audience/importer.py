"""CSV import of subscribers into a list: streamed, one transaction, every rejected row explained."""

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
    consents,
    lists,
    subscribers,
    subscriptions,
    suppressions,
)

CHUNK = 2000
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
}
PROFILE = ("name", "language", "timezone", "country")


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
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "list": self.list_slug,
            "encoding": self.encoding,
            "accepted": self.accepted,
            "updated": self.updated,
            "unchanged": self.unchanged,
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


def _records(fh: io.TextIOBase, path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    sample = fh.read(8192)
    fh.seek(0)
    try:
        dialect: Any = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(fh, dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; expected a header row with an email column") from None
    except csv.Error as exc:
        raise InputError(f"{path}:1: the header is not CSV: {exc}") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        while True:
            # A broken record (a field over csv's size limit) leaves the reader lost: the whole
            # import is refused, in its transaction, so nothing is half written.
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"{path}:{start}: not CSV from here on: {exc}") from None
            yield start, record
            start = reader.line_num + 1

    return header, rows()


def import_csv(site: Site, path: Path | str, list_slug: str) -> ImportReport:
    """Import `path` into list `list_slug` in one transaction; returns the report."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    encoding = detect_encoding(path)
    report = ImportReport(file=str(path), list_slug=list_slug, encoding=encoding.replace("-sig", ""))
    store = site.store
    with path.open(encoding=encoding, newline="") as fh, store.write() as conn:
        lid = list_id(conn, list_slug)
        header, records = _records(fh, path)
        columns = [ALIASES.get(h.strip().lower(), h.strip()) for h in header]
        if "email" not in columns:
            raise InputError(f"{path}:1: no email column in the header {header!r}; name one column 'email'")
        dupes = [c for c in columns if columns.count(c) > 1]
        if dupes:
            raise InputError(f"{path}:1: column {dupes[0]!r} appears twice in the header")
        importer = _Importer(site, conn, lid, path, columns, report)
        chunk: list[tuple[int, dict[str, Any]]] = []
        for line, record in records:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(columns):
                report.rejected.append(
                    Rejected(
                        line,
                        f"row has {len(record)} fields but the header has "
                        f"{len(columns)} (check quotes and delimiters)",
                    )
                )
                continue
            chunk.append((line, dict(zip(columns, record, strict=True))))
            if len(chunk) >= CHUNK:
                importer.flush(chunk)
                chunk = []
        if chunk:
            importer.flush(chunk)
    report.rejected.sort(key=lambda r: r.line)
    return report


class _Importer:
    """Validates and writes rows a chunk at a time, on the import's one connection."""

    def __init__(
        self, site: Site, conn: Connection, lid: int, path: Path, columns: list[str], report: ImportReport
    ):
        self.site, self.conn, self.lid, self.report = site, conn, lid, report
        self.extra = [c for c in columns if c not in ALIASES.values()]
        self.now: datetime = now_utc()
        self.detail = path.name
        row = conn.execute(select(lists.c.default_language, lists.c.languages).where(lists.c.id == lid)).one()
        self.default_language = row.default_language
        self.languages = {lang.lower(): lang for lang in site.languages}
        self.list_languages = list(row.languages)

    def _clean(self, line: int, raw: dict[str, Any]) -> dict[str, Any] | None:
        try:
            email = normalize_email(raw["email"])
            values: dict[str, Any] = {"email": email}
            if name := clean_text(raw.get("name", "")):
                values["name"] = name
            if raw.get("language", "").strip():
                values["language"] = self._language(raw["language"])
            if raw.get("timezone", "").strip():
                values["timezone"] = check_timezone(raw["timezone"].strip())
            if raw.get("country", "").strip():
                values["country"] = check_country(raw["country"])
            attrs = {clean_text(k): v for k in self.extra if (v := clean_text(raw.get(k, ""), 1000))}
            if attrs:
                values["attributes"] = attrs
            return values
        except InputError as exc:
            self.report.rejected.append(Rejected(line, str(exc), raw.get("email", "")))
            return None

    def _language(self, value: str) -> str:
        lang = value.strip().replace("_", "-").lower()
        found = self.languages.get(lang) or self.languages.get(lang.split("-")[0])
        if found is None:
            raise InputError(f"unknown language {value!r}; this site offers {', '.join(self.site.languages)}")
        return found

    def flush(self, chunk: list[tuple[int, dict[str, Any]]]) -> None:
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
        new_subs: list[tuple[str, int]] = []  # (email, line)
        for email, (line, values) in cleaned.items():
            if hashes[email] in suppressed:
                self.report.rejected.append(
                    Rejected(
                        line, "address is on the suppression list (forgotten, bounced or complained)", email
                    )
                )
                continue
            person = existing.get(email)
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
                new_subs.append((email, line))
                self.report.accepted += 1
                continue
            if person.updated_at == self.now:
                self.report.rejected.append(Rejected(line, "duplicate of an earlier row in this file", email))
                continue
            patch = {k: values[k] for k in PROFILE if k in values and values[k] != getattr(person, k)}
            if "attributes" in values:
                merged = {**(person.attributes or {}), **values["attributes"]}
                if merged != (person.attributes or {}):
                    patch["attributes"] = merged
            status = subs.get(person.id)
            if status is None:
                new_subs.append((email, line))
            if patch:
                changed.append(
                    {
                        "b_id": person.id,
                        "updated_at": self.now,
                        **{k: patch.get(k, getattr(person, k)) for k in (*PROFILE, "attributes")},
                    }
                )
            else:
                # Mark as seen in this import, so a later duplicate row is recognised.
                changed.append(
                    {
                        "b_id": person.id,
                        "updated_at": self.now,
                        **{k: getattr(person, k) for k in (*PROFILE, "attributes")},
                    }
                )
            if status is None:
                self.report.accepted += 1
            elif patch:
                self.report.updated += 1
            else:
                self.report.unchanged += 1
            # An existing subscription keeps its status: a re-import never resubscribes someone who
            # unsubscribed, bounced or complained (SUPPRESSED_STATUSES).

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
                        subscribers.c.email.in_([e for e, _ in new_subs])
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
                        "status": "confirmed",
                        "soft_bounces": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                    for e, _ in new_subs
                ],
            )
            insert_many(
                conn,
                consents,
                [
                    {
                        "subscriber_id": ids[e],
                        "list_id": self.lid,
                        "action": "import",
                        "source": "import",
                        "detail": f"{self.detail} line {line}",
                        "ip": "",
                        "at": self.now,
                    }
                    for e, line in new_subs
                ],
            )
