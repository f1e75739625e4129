"""Subscribers page: counts per list, language and status; one person's history; unsubscribe or forget."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from newsletter.audience import status
from newsletter.audience.lists import list_counts
from newsletter.audience.personal import personal_data
from newsletter.audience.subscribers import forget, normalize_email, show
from newsletter.errors import InputError
from newsletter.store import now_utc
from newsletter.web.admin.auth import actor_of, audit, guard, site_of
from newsletter.web.admin.render import render, translator
from newsletter.web.pages import data_response


@guard()
def subscribers(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    query = request.query_params.get("email", "").strip()
    person, error = None, ""
    if query:
        try:
            person = show(site.store, query)
            if person is None:
                _ = translator(request)
                error = _("No subscriber with the address %(email)s.", email=normalize_email(query))
        except InputError as exc:
            error = str(exc)
    return render(
        request,
        "subscribers.html",
        {
            "counts": list_counts(site.store),
            "query": query,
            "person": person,
            "error": error,
            "done": request.query_params.get("done", ""),
        },
    )


@guard("staff")
def person_data(request: Request, _form: FormData | None) -> Response:
    """The person's data export, the same JSON they download from their preferences page."""
    site = site_of(request)
    email = normalize_email(request.query_params.get("email", ""))
    person = show(site.store, email)
    data = personal_data(site.store, person["subscriber"]["id"], now_utc()) if person else None
    if data is None:
        _ = translator(request)
        text = _("No subscriber with the address %(email)s.", email=email)
        return PlainTextResponse(text, status_code=404)
    audit(request, "data-export", email, {}, subject=email)
    return data_response(data, data["profile"]["id"])


@guard("staff")
def unsubscribe(request: Request, form: FormData | None) -> Response:
    site = site_of(request)
    email = normalize_email(str(form.get("email", "")) if form else "")
    user = request.state.user
    person = show(site.store, email)
    with site.store.write() as conn:
        status.leave(
            conn,
            person["subscriber"]["id"] if person else None,
            "unsubscribed",
            source="admin",
            detail=f"by {user.email} in the dashboard",
            email=email,
            now=now_utc(),
        )
    audit(request, "unsubscribe", email, {"lists": "all"}, subject=email)
    return RedirectResponse(f"/admin/subscribers?email={email}&done=unsubscribed", status_code=303)


@guard("staff")
def forget_person(request: Request, form: FormData | None) -> Response:
    site = site_of(request)
    email = normalize_email(str(form.get("email", "")) if form else "")
    forget(site.store, email, audit_as=actor_of(request))
    return RedirectResponse("/admin/subscribers?done=forgotten", status_code=303)
