"""The overview: what goes out next, what is going out, how recent campaigns did, what needs attention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.feeds import query as feeds
from newsletter.report import figures
from newsletter.schedule import occurrences
from newsletter.send import ledger
from newsletter.site import Site
from newsletter.web.admin import stages
from newsletter.web.admin.auth import audit, guard, now_of, site_of
from newsletter.web.admin.render import message, render, translator


def attention(site: Site, now: Any) -> dict[str, Any]:
    """Missed occurrences, in-doubt batches, failing feeds, incomplete translations."""
    missed = occurrences.troubled(site.store, since=now - timedelta(days=14))
    doubt = ledger.list_in_doubt(site.store)
    with site.store.read() as conn:
        failing = feeds.failing_feeds(conn)
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
        return feeds.stored_feeds(conn)


@guard()
def overview(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    now = now_of(request)
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
            "sending": ledger.progress(site.store),
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
        _ = translator(request)
        title = _("Decision not recorded")
        return message(request, title, error, 400)
    audit(request, "in-doubt", f"batch {batch_id}", {"decision": decision})
    return RedirectResponse("/admin/", status_code=303)
