"""Mailing lists: read from `lists/*.yaml` (one list a file) and synced to the store."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update

from newsletter.errors import ConfigError, SourceError
from newsletter.site import Site
from newsletter.store import Store, now_utc
from newsletter.store.tables import SUBSCRIPTION_STATUSES, lists, subscribers, subscriptions
from newsletter.yamlfile import Located, load_yaml

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KEYS = {
    "slug",
    "name",
    "description",
    "languages",
    "default_language",
    "double_opt_in",
    "sender",
    "postal_address",
    "public",
}


@dataclass(frozen=True)
class MailingList:
    slug: str
    name: dict[str, str]
    description: dict[str, str]
    languages: list[str]
    default_language: str
    double_opt_in: bool
    sender_name: str
    sender_email: str
    postal_address: str
    public: bool
    source_file: str = ""

    def display_name(self, language: str) -> str:
        return self.name.get(language) or self.name.get(self.default_language) or self.slug


@dataclass
class ListsReport:
    lists: list[MailingList] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)


def parse_list(path: Path, site: Site) -> MailingList:
    """Parse and validate one list file."""
    data = load_yaml(path)
    if not isinstance(data, Located):
        raise SourceError(path, 1, 1, "expected a mapping with slug, name, languages, sender, ...")
    unknown = set(data) - KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise data.error(key, f"unknown field {key!r}; expected one of {', '.join(sorted(KEYS))}")
    for key in ("slug", "name", "sender", "postal_address"):
        if key not in data:
            raise data.error(None, f"missing field {key!r}")
    slug = str(data["slug"])
    if not SLUG.match(slug):
        raise data.error("slug", f"slug {slug!r}: use lowercase letters, digits and dashes")

    languages = data.get("languages", list(site.languages))
    if not isinstance(languages, list) or not languages:
        raise data.error("languages", "languages: expected a non-empty list such as [en, fr]")
    try:
        languages = [site.check_language(str(lang), "languages") for lang in languages]
    except ConfigError as exc:
        raise data.error("languages", str(exc)) from None
    default = str(data.get("default_language", languages[0]))
    if default not in languages:
        raise data.error("default_language", f"default_language {default!r} is not in languages {languages}")

    name = _per_language(data, "name", languages)
    description = _per_language(data, "description", languages) if "description" in data else {}
    sender = data["sender"]
    if not isinstance(sender, Located) or "email" not in sender:
        raise data.error("sender", "sender: expected a mapping with name and email")
    try:
        sender_email = validate_email(str(sender["email"]), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise sender.error("email", f"sender email {sender['email']!r}: {exc}") from None
    for flag in ("double_opt_in", "public"):
        if flag in data and not isinstance(data[flag], bool):
            raise data.error(flag, f"{flag}: expected true or false, got {data[flag]!r}")
    return MailingList(
        slug=slug,
        name=name,
        description=description,
        languages=languages,
        default_language=default,
        double_opt_in=bool(data.get("double_opt_in", True)),
        sender_name=str(sender.get("name", "")),
        sender_email=sender_email,
        postal_address=str(data["postal_address"]).strip(),
        public=bool(data.get("public", False)),
        source_file=str(path),
    )


def _per_language(data: Located, key: str, languages: list[str]) -> dict[str, str]:
    value = data[key]
    if isinstance(value, str):
        return {languages[0]: value}
    if not isinstance(value, dict):
        raise data.error(key, f"{key}: expected text or a mapping of language to text")
    unknown = [lang for lang in value if lang not in languages]
    if unknown:
        raise data.error(
            key, f"{key}: language {unknown[0]!r} is not among this list's languages {languages}"
        )
    return {str(k): str(v) for k, v in value.items()}


def load_lists(site: Site) -> ListsReport:
    """Every valid list of the site; invalid files and duplicate slugs are reported, not fatal."""
    report = ListsReport()
    seen: dict[str, str] = {}
    for path in sorted(site.lists_dir.glob("*.y*ml")):
        try:
            mlist = parse_list(path, site)
        except ConfigError as exc:
            report.errors.append(str(exc))
            continue
        if mlist.slug in seen:
            report.errors.append(
                f"{path}: duplicate list slug {mlist.slug!r}, already defined in "
                f"{seen[mlist.slug]}; rename one of them"
            )
            continue
        seen[mlist.slug] = str(path)
        report.lists.append(mlist)
    return report


def sync_lists(site: Site, store: Store | None = None) -> ListsReport:
    """Upsert the site's lists into the store; lists whose file is gone are marked inactive."""
    store = store or site.store
    report = load_lists(site)
    now = now_utc()
    with store.write() as conn:
        existing = {row.slug: row.id for row in conn.execute(select(lists.c.slug, lists.c.id))}
        for mlist in report.lists:
            values = asdict(mlist)
            values.update(active=True, synced_at=now)
            if mlist.slug in existing:
                conn.execute(update(lists).where(lists.c.id == existing[mlist.slug]).values(**values))
            else:
                conn.execute(lists.insert().values(**values))
        wanted = {m.slug for m in report.lists}
        # A file with an error keeps its list active as it was: only a removed file deactivates.
        broken = {Path(e.split(":", 1)[0]).stem for e in report.errors}
        for slug in existing:
            if slug not in wanted and slug not in broken:
                conn.execute(
                    update(lists)
                    .where(lists.c.slug == slug, lists.c.active.is_(True))
                    .values(active=False, synced_at=now)
                )
                report.deactivated.append(slug)
    return report


def list_id(conn: Any, slug: str) -> int:
    """The id of the active list `slug`, or a ConfigError naming the lists that exist."""
    row = conn.execute(select(lists.c.id).where(lists.c.slug == slug, lists.c.active.is_(True))).first()
    if row is None:
        known = [r.slug for r in conn.execute(select(lists.c.slug).where(lists.c.active.is_(True)))]
        raise ConfigError(f"unknown list {slug!r}; lists: {', '.join(known) or '(none: run lists sync)'}")
    return int(row.id)


def list_counts(store: Store) -> list[dict[str, Any]]:
    """Per active list: counts by status and by language (of subscribers whose status counts)."""
    out: list[dict[str, Any]] = []
    with store.read() as conn:
        rows = conn.execute(select(lists).where(lists.c.active.is_(True)).order_by(lists.c.slug)).all()
        status_rows = conn.execute(
            select(subscriptions.c.list_id, subscriptions.c.status, func.count()).group_by(
                subscriptions.c.list_id, subscriptions.c.status
            )
        ).all()
        lang_rows = conn.execute(
            select(subscriptions.c.list_id, subscribers.c.language, func.count())
            .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
            .where(subscriptions.c.status == "confirmed")
            .group_by(subscriptions.c.list_id, subscribers.c.language)
        ).all()
    for row in rows:
        statuses = {s: 0 for s in SUBSCRIPTION_STATUSES}
        statuses.update({s: int(n) for lid, s, n in status_rows if lid == row.id})
        out.append(
            {
                "slug": row.slug,
                "name": row.name,
                "languages": row.languages,
                "public": row.public,
                "double_opt_in": row.double_opt_in,
                "statuses": statuses,
                "confirmed_by_language": {lang: int(n) for lid, lang, n in lang_rows if lid == row.id},
                "total": sum(statuses.values()),
            }
        )
    return out


def check_site(site: Site) -> Any:
    """`newsletter check`: every list file parses, slugs are unique."""
    from newsletter.findings import CheckReport

    report = load_lists(site)
    result = CheckReport("lists", errors=list(report.errors))
    if not report.lists and not report.errors:
        result.warnings.append(f"{site.lists_dir}: no list files (lists/*.yaml)")
    result.tables.append(
        (
            "lists",
            ["slug", "languages", "double opt-in", "public"],
            [
                [
                    m.slug,
                    ", ".join(m.languages),
                    "yes" if m.double_opt_in else "no",
                    "yes" if m.public else "no",
                ]
                for m in report.lists
            ],
        )
    )
    return result
