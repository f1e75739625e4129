"""The overview: what goes out next, what is going out, how recent campaigns did, what needs attention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.report import figures, rollup
from newsletter.site import Site
from newsletter.store.tables import feeds, occurrences, send_batches, sends
from newsletter.web.admin import stages
from newsletter.web.admin.auth import guard, now_of, site_of
from newsletter.web.admin.render import render

DONE = ("sent", "failed", "suppressed")


def in_progress(site: Site) -> list[dict[str, Any]]:
    """Occurrences being sent, with their ledger rows by status."""
    with site.store.read() as conn:
        rows = conn.execute(
            select(occurrences).where(occurrences.c.status == "sending").order_by(occurrences.c.due_at)
        ).all()
        counts = conn.execute(
            select(sends.c.occurrence_id, sends.c.status, func.count())
            .where(sends.c.occurrence_id.in_([r.id for r in rows]))
            .group_by(sends.c.occurrence_id, sends.c.status)
        ).all()
    out = []
    for row in rows:
        by_status = {status: int(n) for occ, status, n in counts if occ == row.id}
        total = sum(by_status.values())
        done = sum(by_status.get(s, 0) for s in DONE)
        out.append(
            {
                "id": row.id,
                "campaign": row.campaign,
                "due_at": row.due_at,
                "statuses": by_status,
                "total": total,
                "done": done,
                "progress": done / total if total else 0.0,
            }
        )
    return out


def attention(site: Site, now: Any) -> dict[str, Any]:
    """Missed occurrences, in-doubt batches, failing feeds, incomplete translations."""
    with site.store.read() as conn:
        missed = conn.execute(
            select(occurrences)
            .where(
                occurrences.c.status.in_(("missed", "failed")),
                occurrences.c.due_at >= now - timedelta(days=14),
            )
            .order_by(occurrences.c.due_at.desc())
        ).all()
        doubt = conn.execute(
            select(send_batches, occurrences.c.campaign, func.count(sends.c.id).label("recipients"))
            .join(occurrences, occurrences.c.id == send_batches.c.occurrence_id)
            .outerjoin(sends, sends.c.batch_id == send_batches.c.id)
            .where(send_batches.c.status == "in_doubt")
            .group_by(send_batches.c.id, occurrences.c.campaign)
            .order_by(send_batches.c.id)
        ).all()
        failing = conn.execute(
            select(feeds).where(
                or_(
                    feeds.c.disabled_reason.is_not(None),
                    feeds.c.last_success_at.is_(None) & feeds.c.last_error_at.is_not(None),
                    feeds.c.last_error_at > feeds.c.last_success_at,
                )
            )
        ).all()
    report, why = stages.attempt(stages.translation_report, site)
    incomplete = [*report.warnings, *report.errors] if report is not None else []
    return {
        "missed": missed,
        "in_doubt": doubt,
        "decisions": stages.in_doubt_decisions(),
        "failing_feeds": failing,
        "translations": incomplete,
        "translations_unavailable": why,
    }


def feed_status(site: Site) -> list[Any]:
    with site.store.read() as conn:
        return list(conn.execute(select(feeds).order_by(feeds.c.name)).all())


@guard()
def overview(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    now = now_of(request)
    rollup.refresh(site.store)
    planned, plan_error = stages.attempt(stages.plan, site, now, 14)
    upcoming = [p for p in (planned or []) if p.due >= now and p.status in ("planned", "scheduled", "paused")]
    return render(
        request,
        "overview.html",
        {
            "now": now,
            "at": request.query_params.get("at", ""),
            "upcoming": upcoming[:12],
            "plan_error": plan_error,
            "sending": in_progress(site),
            "recent": figures.recent(site.store, 8),
            "feeds": feed_status(site),
            "attention": attention(site, now),
        },
    )


@guard("staff")
def decide(request: Request, form: FormData | None) -> Response:
    decision = str(form.get("decision", "")) if form else ""
    site = site_of(request)
    batch_id = int(request.path_params["batch_id"])
    _, error = stages.attempt(stages.decide_in_doubt, site, batch_id, decision, request.state.user.email)
    if error:
        return render(request, "message.html", {"title": "Decision not recorded", "message": error}, 400)
    return RedirectResponse("/admin/", status_code=303)
