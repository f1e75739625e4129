"""Sign-on click-throughs compared across campaigns, languages and days (compare page, `stats --compare`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from newsletter.report.figures import occurrence_dict, sends_by
from newsletter.report.rollup import SIGN_ON, refresh
from newsletter.store import Store
from newsletter.store.tables import occurrences, report_counts


def compare(store: Store, since: datetime | None = None) -> dict[str, Any]:
    """Sign-on click-throughs (unique, human) per occurrence and language, and per day and language."""
    refresh(store)
    c = report_counts.c
    scope = f"b:{SIGN_ON}"
    with store.read() as conn:
        query = select(occurrences).where(occurrences.c.status.in_(("sending", "sent", "failed")))
        if since is not None:
            query = query.where(occurrences.c.due_at >= since)
        occ_rows = conn.execute(query.order_by(occurrences.c.due_at)).all()
        ids = [int(r.id) for r in occ_rows]
        per_occ = conn.execute(
            select(c.occurrence_id, c.language, func.sum(c.uniq_human), func.sum(c.raw))
            .where(c.occurrence_id.in_(ids), c.scope == scope, c.kind == "click")
            .group_by(c.occurrence_id, c.language)
        ).all()
        per_hour = conn.execute(
            select(c.hour, c.language, func.sum(c.uniq_human))
            .where(c.occurrence_id.in_(ids), c.scope == scope, c.kind == "click")
            .group_by(c.hour, c.language)
        ).all()
    ledger = sends_by(store, ids)
    sent: dict[tuple[int, str], int] = defaultdict(int)
    for occurrence_id, language, status, n in ledger:
        if status == "sent":
            sent[(occurrence_id, language)] += n
    clicks = {(int(o), lang): (int(h), int(r)) for o, lang, h, r in per_occ}
    languages = sorted({lang for _, lang in clicks} | {lang for _, lang in sent})
    rows = []
    for occ in occ_rows:
        by_lang: dict[str, dict[str, Any]] = {}
        for lang in languages:
            human, raw = clicks.get((int(occ.id), lang), (0, 0))
            n = sent.get((int(occ.id), lang), 0)
            by_lang[lang] = {
                "sign_on": human,
                "sign_on_raw": raw,
                "sent": n,
                "rate": human / n if n else None,
            }
        rows.append(
            {
                **occurrence_dict(occ),
                "languages": by_lang,
                "sign_on": sum(v["sign_on"] for v in by_lang.values()),
            }
        )
    daily: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for hour, lang, human in per_hour:
        day = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=int(hour))).date().isoformat()
        daily[day][lang] += int(human)
    return {
        "languages": languages,
        "occurrences": rows,
        "daily": [
            {"day": d, **{lang: v.get(lang, 0) for lang in languages}} for d, v in sorted(daily.items())
        ],
    }
