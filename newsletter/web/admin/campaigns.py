"""Campaign page, comparison page and CSV exports: thin handlers over `newsletter.report`."""

from __future__ import annotations

import re

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from newsletter.report import compare as comparison
from newsletter.report import export, figures, rollup
from newsletter.web.admin.auth import guard, site_of
from newsletter.web.admin.render import render, translator


def _report(request: Request) -> figures.CampaignReport | None:
    """One occurrence (`/campaigns/ID`) or every occurrence of a campaign (`/campaign/NAME`)."""
    store = site_of(request).store
    if "occurrence_id" in request.path_params:
        ids = [int(request.path_params["occurrence_id"])]
    else:
        ids = figures.resolve(store, request.path_params["name"])
    report = figures.campaign_report(store, ids)
    return report if report.occurrences else None


@guard()
def campaign(request: Request, _form: FormData | None) -> Response:
    report = _report(request)
    if report is None:
        _ = translator(request)
        return PlainTextResponse(_("No such campaign occurrence."), status_code=404)
    charts = {
        "timeline": report.timeline,
        "languages": {lang: f.as_dict() for lang, f in report.languages.items()},
    }
    return render(
        request,
        "campaign.html",
        {"report": report, "charts": charts, "aggregate": "name" in request.path_params},
    )


@guard()
def figures_csv(request: Request, _form: FormData | None) -> Response:
    report = _report(request)
    if report is None:
        _ = translator(request)
        return PlainTextResponse(_("No such campaign occurrence."), status_code=404)
    occ = report.occurrences[0]
    name = occ["campaign"] if "name" in request.path_params else f"{occ['campaign']}-{occ['id']}"
    return csv_response(export.figures_rows(report), re.sub(r"[^A-Za-z0-9._-]", "-", name) + "-figures.csv")


@guard()
def clicks_csv(request: Request, _form: FormData | None) -> Response:
    occurrence_id = int(request.path_params["occurrence_id"])
    store = site_of(request).store
    return csv_response(export.click_rows(store, occurrence_id), f"occurrence-{occurrence_id}-clicks.csv")


def csv_response(rows: object, filename: str) -> Response:
    return StreamingResponse(
        export.as_csv(rows),  # type: ignore[arg-type]
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@guard()
def compare(request: Request, _form: FormData | None) -> Response:
    store = site_of(request).store
    data = comparison.compare(store)
    return render(request, "compare.html", {"data": data, "sign_on_label": rollup.SIGN_ON})
