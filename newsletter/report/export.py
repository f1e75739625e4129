"""CSV exports: a campaign's figures (total, per language, per link) and its click events."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select

from newsletter import csvsafe
from newsletter.report.figures import CampaignReport, Figures
from newsletter.store import Store
from newsletter.store.tables import events, links

FIGURE_COLUMNS = [
    "sent",
    "delivered",
    "bounced",
    "dropped",
    "opens",
    "opens_all",
    "opens_raw",
    "clicks",
    "clicks_all",
    "clicks_raw",
    "click_rate",
    "click_to_open",
    "unsubscribes",
    "spam_reports",
    "sign_on",
    "sign_on_raw",
    "conversions",
]
# The figures a link row has; its other columns stay blank (a link is not sent, delivered or opened).
LINK_COLUMNS = frozenset({"clicks", "clicks_all", "clicks_raw", "click_rate", "click_to_open", "conversions"})
PAGE = 5000


def figures_rows(report: CampaignReport) -> Iterator[list[Any]]:
    """Header, the total, one row per language, then one row per link."""
    yield ["scope", "language", "label", "url", *FIGURE_COLUMNS]

    def cells(f: Figures) -> list[Any]:
        data = f.as_dict()
        return [data[c] if data[c] is not None else "" for c in FIGURE_COLUMNS]

    yield ["total", "", "", "", *cells(report.total)]
    for lang, f in report.languages.items():
        yield ["language", lang, "", "", *cells(f)]
    for link in report.links:
        per_link = Figures(
            clicks=link.clicks,
            clicks_all=link.clicks_all,
            clicks_raw=link.clicks_raw,
            conversions=link.conversions,
        )
        row = [
            value if name in LINK_COLUMNS else ""
            for name, value in zip(FIGURE_COLUMNS, cells(per_link), strict=True)
        ]
        yield ["link", link.language, link.label, link.url, *row]


def click_rows(store: Store, occurrence_id: int) -> Iterator[list[Any]]:
    """Header, then every click of the occurrence in id order (keyset pages: flat memory)."""
    yield ["at", "language", "label", "url", "human", "source", "send_id"]
    with store.read() as conn:
        found = conn.execute(select(links.c.id, links.c.url).where(links.c.occurrence_id == occurrence_id))
        urls: dict[int, str] = {int(r.id): r.url for r in found}
    last = 0
    while True:
        with store.read() as conn:
            page = conn.execute(
                select(
                    events.c.id,
                    events.c.at,
                    events.c.language,
                    events.c.label,
                    events.c.link_id,
                    events.c.machine,
                    events.c.source,
                    events.c.send_id,
                )
                .where(events.c.occurrence_id == occurrence_id, events.c.kind == "click", events.c.id > last)
                .order_by(events.c.id)
                .limit(PAGE)
            ).all()
        if not page:
            return
        for e in page:
            yield [
                e.at.isoformat(),
                e.language or "",
                e.label or "",
                urls.get(e.link_id, ""),
                "no" if e.machine else "yes",
                e.source,
                e.send_id or "",
            ]
        last = page[-1].id


def as_csv(rows: Iterable[list[Any]]) -> Iterator[str]:
    """Rows as CSV text, a few hundred rows per chunk."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
