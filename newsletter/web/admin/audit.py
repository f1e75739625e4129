"""Audit page: staff actions, filtered by who, what, target and day, and the same as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from newsletter import audit as log
from newsletter.errors import InputError
from newsletter.web.admin.auth import guard, site_of
from newsletter.web.admin.campaigns import csv_response
from newsletter.web.admin.render import render

SHOWN = 500


def _filter(request: Request) -> log.Filter:
    q = request.query_params

    def day(name: str, *, end: bool = False) -> datetime | None:
        value = q.get(name, "").strip()
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            return parsed + timedelta(days=1) if end else parsed  # "until" a day includes that day
        except (ValueError, OverflowError):
            raise InputError(f"{name}={value!r}: expected a date such as 2021-06-01") from None

    return log.Filter(
        actor=q.get("actor", "").strip(),
        action=q.get("action", "").strip(),
        target=q.get("target", "").strip(),
        since=day("since"),
        until=day("until", end=True),
    )


@guard()
def audit_page(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    where = _filter(request)
    actors, actions = log.actors_and_actions(site.store)
    return render(
        request,
        "audit.html",
        {
            "entries": log.entries(site.store, where, limit=SHOWN),
            "shown": SHOWN,
            "actors": actors,
            "actions": actions,
            "where": where,
            "query": request.url.query,
            "since": request.query_params.get("since", ""),
            "until": request.query_params.get("until", ""),
        },
    )


@guard()
def audit_csv(request: Request, _form: FormData | None) -> Response:
    where = _filter(request)
    rows = log.csv_rows(log.iter_entries(site_of(request).store, where))
    return csv_response(rows, "audit.csv")
