"""Campaign figures read from the rollups: per occurrence, per language, per link, per hour.

"Human" figures leave out machine opens (Apple Mail Privacy Protection, SendGrid's sg_machine_open)
and suspected bot clicks; both counts are always given. Unique figures count each recipient once.
Each read refreshes the rollups first (`report.rollup.refresh`): callers just ask.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from newsletter.errors import InputError
from newsletter.ids import parse_id
from newsletter.report.rollup import SIGN_ON, refresh
from newsletter.store import Store, sendstatus
from newsletter.store.tables import links, occurrences, report_counts, report_sends, sends

UNSUBSCRIBE_KINDS = ("unsubscribe", "group_unsubscribe")
TIMELINE_HOURS = 14 * 24  # the timeline's last point sums everything later


@dataclass
class Figures:
    """The figures of one campaign, or of one of its languages."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    dropped: int = 0
    opens: int = 0  # unique, human
    opens_all: int = 0  # unique, machine opens included
    opens_raw: int = 0
    clicks: int = 0  # unique, human
    clicks_all: int = 0  # unique, suspected bots included
    clicks_raw: int = 0
    unsubscribes: int = 0
    spam_reports: int = 0
    sign_on: int = 0  # unique human clicks on links labelled declaration-sign-on
    sign_on_raw: int = 0
    conversions: int = 0

    @property
    def reached(self) -> int:
        """The base of the rates: delivered when the transport reports it, else sent."""
        return self.delivered or self.sent

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.reached if self.reached else None

    @property
    def click_to_open(self) -> float | None:
        return self.clicks / self.opens if self.opens else None

    @property
    def open_rate(self) -> float | None:
        return self.opens / self.reached if self.reached else None

    @property
    def sign_on_rate(self) -> float | None:
        return self.sign_on / self.reached if self.reached else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        for name in ("click_rate", "click_to_open", "open_rate", "sign_on_rate"):
            value = getattr(self, name)
            out[name] = None if value is None else round(value, 4)
        return out

    def add(self, kind: str, scope: str, raw: int, raw_human: int, uniq: int, uniq_human: int) -> None:
        """Count one rollup row (already summed) into these figures."""
        if scope == f"b:{SIGN_ON}" and kind == "click":
            self.sign_on += uniq_human
            self.sign_on_raw += raw
        if scope != "":
            return
        if kind == "delivered":
            self.delivered += uniq
        elif kind == "bounce":
            self.bounced += uniq
        elif kind == "dropped":
            self.dropped += uniq
        elif kind == "open":
            self.opens += uniq_human
            self.opens_all += uniq
            self.opens_raw += raw
        elif kind == "click":
            self.clicks += uniq_human
            self.clicks_all += uniq
            self.clicks_raw += raw
        elif kind in UNSUBSCRIBE_KINDS:
            self.unsubscribes += uniq
        elif kind == "spamreport":
            self.spam_reports += uniq
        elif kind == "conversion":
            self.conversions += uniq


@dataclass
class LinkFigures:
    id: int
    language: str
    label: str
    url: str
    clicks: int = 0
    clicks_all: int = 0
    clicks_raw: int = 0
    conversions: int = 0

    @property
    def sign_on(self) -> bool:
        return self.label == SIGN_ON


@dataclass
class CampaignReport:
    """Everything the campaign page and `newsletter stats` show for a set of occurrences."""

    occurrences: list[dict[str, Any]]
    total: Figures
    languages: dict[str, Figures]
    links: list[LinkFigures]
    timeline: list[dict[str, Any]]  # per hour after sending: opens and clicks
    sends: dict[str, int] = field(default_factory=dict)  # ledger rows by status

    @property
    def title(self) -> str:
        names = sorted({o["campaign"] for o in self.occurrences})
        return ", ".join(names)

    def as_dict(self) -> dict[str, Any]:
        return {
            "occurrences": self.occurrences,
            "total": self.total.as_dict(),
            "languages": {lang: f.as_dict() for lang, f in self.languages.items()},
            "links": [{**asdict(link), "sign_on": link.sign_on} for link in self.links],
            "timeline": self.timeline,
            "sends": self.sends,
        }


def occurrence_dict(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "key": row.key,
        "campaign": row.campaign,
        "event_id": row.event_id,
        "session": row.session,
        "due_at": row.due_at.isoformat(),
        "status": row.status,
        "languages": list(row.languages or []),
    }


def resolve(store: Store, ref: str) -> list[int]:
    """Occurrence ids for an occurrence id, an occurrence key, or a campaign name (all its occurrences)."""
    with store.read() as conn:
        clauses = [occurrences.c.key == ref, occurrences.c.campaign == ref]
        if (ref_id := parse_id(ref)) is not None:
            clauses.append(occurrences.c.id == ref_id)
        rows = conn.execute(
            select(occurrences.c.id, occurrences.c.campaign)
            .where(or_(*clauses))
            .order_by(occurrences.c.due_at)
        ).all()
        if not rows:
            known = conn.scalars(select(occurrences.c.campaign).distinct().order_by(occurrences.c.campaign))
            raise InputError(
                f"campaign {ref!r}: no such occurrence id, key or campaign; campaigns with occurrences: "
                f"{', '.join(known) or '(none yet)'}"
            )
    by_id = [int(r.id) for r in rows if int(r.id) == parse_id(ref)]
    return by_id or [int(r.id) for r in rows]


def _sum_rows(conn: Connection, ids: list[int], *group: Any) -> list[Any]:
    c = report_counts.c
    return list(
        conn.execute(
            select(
                *group,
                c.kind,
                func.sum(c.raw).label("raw"),
                func.sum(c.raw_human).label("raw_human"),
                func.sum(c.uniq).label("uniq"),
                func.sum(c.uniq_human).label("uniq_human"),
            )
            .where(c.occurrence_id.in_(ids))
            .group_by(*group, c.kind)
        ).all()
    )


def sends_by(store: Store, ids: list[int]) -> list[tuple[int, str, str, int]]:
    """Ledger rows per (occurrence, language, status): kept counts of finished occurrences (see
    rollup.keep_finished_sends), live counts of the others. Reads only."""
    if not ids:
        return []
    r = report_sends.c
    with store.read() as conn:
        kept = conn.execute(
            select(r.occurrence_id, r.language, r.status, r.n).where(r.occurrence_id.in_(ids))
        )
        out = [(int(o), lang, status, int(n)) for o, lang, status, n in kept]
        known = {row[0] for row in out}
        live = conn.execute(
            sendstatus.counts(
                sends.c.occurrence_id,
                sends.c.language,
                where=sends.c.occurrence_id.in_([i for i in ids if i not in known]),
            )
        ).all()
    return out + [(int(o), lang, status, int(n)) for o, lang, status, n in live]


def campaign_report(store: Store, ids: list[int]) -> CampaignReport:
    """The figures of the occurrences `ids` taken together (one campaign, or one occurrence)."""
    refresh(store)
    c = report_counts.c
    with store.read() as conn:
        occ_rows = conn.execute(
            select(occurrences).where(occurrences.c.id.in_(ids)).order_by(occurrences.c.due_at)
        ).all()
        counted = _sum_rows(conn, ids, c.language, c.scope)
        hourly = conn.execute(
            select(c.hour, c.kind, func.sum(c.uniq_human), func.sum(c.uniq), func.sum(c.raw))
            .where(c.occurrence_id.in_(ids), c.scope == "", c.kind.in_(("open", "click")))
            .group_by(c.hour, c.kind)
        ).all()
        link_rows = conn.execute(
            select(links.c.id, links.c.language, links.c.label, links.c.url)
            .where(links.c.occurrence_id.in_(ids))
            .order_by(links.c.language, links.c.id)
        ).all()
    ledger = sends_by(store, ids)
    total = Figures()
    per_lang: dict[str, Figures] = defaultdict(Figures)
    by_link = {f"l:{r.id}": LinkFigures(int(r.id), r.language, r.label or "", r.url) for r in link_rows}
    for row in counted:
        parts = (row.kind, row.scope, int(row.raw), int(row.raw_human), int(row.uniq), int(row.uniq_human))
        total.add(*parts)
        per_lang[row.language or "?"].add(*parts)
        link = by_link.get(row.scope)
        if link is not None:
            if row.kind == "click":
                link.clicks += int(row.uniq_human)
                link.clicks_all += int(row.uniq)
                link.clicks_raw += int(row.raw)
            elif row.kind == "conversion":
                link.conversions += int(row.uniq)
    statuses: dict[str, int] = defaultdict(int)
    for _, language, status, n in ledger:
        statuses[status] += n
        if status == "sent":
            total.sent += n
            per_lang[language].sent += n
    start = min((r.due_at for r in occ_rows), default=None)
    return CampaignReport(
        occurrences=[occurrence_dict(r) for r in occ_rows],
        total=total,
        languages=dict(sorted(per_lang.items())),
        links=sorted(by_link.values(), key=lambda lk: (not lk.sign_on, lk.language, -lk.clicks)),
        timeline=_timeline(list(hourly), start),
        sends=dict(statuses),
    )


def _timeline(rows: list[Any], start: datetime | None) -> list[dict[str, Any]]:
    """One point per hour from sending to the last event, gaps filled with zeros.

    Opens trickle in for months; past TIMELINE_HOURS they are summed into the last point (`later`).
    """
    if not rows:
        return []
    first = int(start.timestamp() // 3600) if start else min(int(r[0]) for r in rows)
    points: dict[int, dict[str, Any]] = {}
    for hour, kind, human, uniq, raw in rows:
        offset = min(max(int(hour) - first, 0), TIMELINE_HOURS)
        point = points.setdefault(offset, {"opens": 0, "opens_all": 0, "clicks": 0, "clicks_raw": 0})
        if kind == "open":
            point["opens"] += int(human)
            point["opens_all"] += int(uniq)
        else:
            point["clicks"] += int(human)
            point["clicks_raw"] += int(raw)
    last = max(points)
    out = []
    for offset in range(last + 1):
        point = points.get(offset, {"opens": 0, "opens_all": 0, "clicks": 0, "clicks_raw": 0})
        at = datetime.fromtimestamp((first + offset) * 3600, UTC)
        out.append({"hour": offset, "at": at.isoformat(), "later": offset == TIMELINE_HOURS, **point})
    return out


def recent(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    """The latest occurrences that sent something, newest first, with their key figures."""
    refresh(store)
    c = report_counts.c
    with store.read() as conn:
        occ_rows = conn.execute(
            select(occurrences)
            .where(occurrences.c.status.in_(("sending", "sent", "failed")))
            .order_by(occurrences.c.due_at.desc())
            .limit(limit)
        ).all()
        ids = [int(r.id) for r in occ_rows]
        counted = _sum_rows(conn, ids, c.occurrence_id, c.scope) if ids else []
    ledger = sends_by(store, ids)
    figures: dict[int, Figures] = defaultdict(Figures)
    for row in counted:
        figures[int(row.occurrence_id)].add(
            row.kind, row.scope, int(row.raw), int(row.raw_human), int(row.uniq), int(row.uniq_human)
        )
    for occurrence_id, _, status, n in ledger:
        if status == "sent":
            figures[occurrence_id].sent += n
    return [{**occurrence_dict(r), "figures": figures[int(r.id)]} for r in occ_rows]
