"""The composer: write a campaign per language, preview it, save it as a draft, schedule it, test it.

Thin handlers: the form is parsed into `compose.Form`, checked by `compose.build`, saved by
`stored.save` (a revision, refused when someone else saved since the form was opened). Staff edit;
organisers see the same pages read-only.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from newsletter.errors import Conflict, NewsletterError
from newsletter.web.admin import composing
from newsletter.web.admin.auth import audit, guard, now_of, site_of
from newsletter.web.admin.render import message, render, translator
from newsletter.web.admin.schedule import PREVIEW_CSP

ACTIONS = {"draft": "draft", "schedule": "scheduled", "unschedule": "unscheduled"}


@guard()
def index(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    return render(request, "compose_list.html", {"campaigns": composing.summaries(site)})


@guard("staff")
def new(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    return _page(request, composing.blank(site), revision=0, creating=True)


@guard()
def edit(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    loaded = composing.load(site, request.path_params["campaign"])
    if loaded is None:
        _ = translator(request)
        return message(request, _("No such campaign"), _("It is not stored."), 404)
    form, revision = loaded
    return _page(
        request, form, revision=revision.revision, creating=False, saved=request.query_params.get("saved", "")
    )


def _page(
    request: Request,
    form: Any,
    *,
    revision: int,
    creating: bool,
    errors: dict[str, str] | None = None,
    saved: str = "",
    status_code: int = 200,
) -> Response:
    site = site_of(request)
    context = composing.page_context(
        site, form, now_of(request), revision=revision, creating=creating, _=translator(request)
    )
    context.update(errors=errors or {}, saved=saved, editable=request.state.user.can_send)
    return render(request, "compose.html", context, status_code)


@guard("staff")
def save(request: Request, form: FormData | None) -> Response:
    assert form is not None
    site = site_of(request)
    action = str(form.get("action", "draft"))
    based_on = _int(form.get("revision"))
    creating = based_on == 0
    parsed = composing.parse(site, form)
    _ = translator(request)
    if action not in ACTIONS:
        return _page(
            request,
            parsed,
            revision=based_on,
            creating=creating,
            errors={"_form": _("unknown action %(action)s", action=repr(action))},
            status_code=400,
        )
    user = request.state.user
    try:
        result = composing.save(
            site, parsed, based_on, ACTIONS[action], user.email, now_of(request), creating, _=_
        )
    except Conflict as exc:
        return _page(
            request, parsed, revision=based_on, creating=creating, errors={"_form": str(exc)}, status_code=409
        )
    if isinstance(result, dict):  # field errors: nothing saved
        return _page(request, parsed, revision=based_on, creating=creating, errors=result, status_code=400)
    details = {"revision": result.revision, "status": result.status, "languages": sorted(result.texts)}
    audit(request, "compose" if creating else "edit", result.campaign, details)
    return RedirectResponse(f"/admin/compose/{result.campaign}?saved={action}", status_code=303)


@guard()
def preview(request: Request, form: FormData | None) -> Response:
    """The form's text in one language, rendered by the real pipeline, for a sandboxed frame."""
    assert form is not None
    site = site_of(request)
    language = str(form.get("preview_lang", ""))
    _ = translator(request)
    if language not in site.languages:
        return PlainTextResponse(_("unknown language"), status_code=404)
    try:
        html = composing.preview_html(site, composing.parse(site, form), language, now_of(request), _=_)
    except NewsletterError as exc:
        return HTMLResponse(
            f"<p>{_escape(_('Not rendered: %(why)s', why=str(exc)))}</p>",
            status_code=422,
            headers={"Content-Security-Policy": PREVIEW_CSP},
        )
    return HTMLResponse(html, headers={"Content-Security-Policy": PREVIEW_CSP})


@guard()
def audience(request: Request, _form: FormData | None) -> Response:
    """Audience size per campaign language for the lists and filters in the query (the form's, live)."""
    site = site_of(request)
    q = request.query_params
    counts, error = composing.audience_sizes(
        site,
        q.getlist("lists"),
        q.getlist("audience_languages"),
        q.get("countries", ""),
        q.getlist("regions"),
        q.getlist("languages") or list(site.languages),
        _=translator(request),
    )
    return JSONResponse({"counts": counts, "error": error})


@guard("staff")
def test_send(request: Request, form: FormData | None) -> Response:
    assert form is not None
    site = site_of(request)
    language = str(form.get("test_lang", ""))
    campaign = request.path_params["campaign"]
    _ = translator(request)
    if language not in site.languages:
        return message(
            request, _("Test not sent"), _("unknown language %(language)s", language=repr(language)), 400
        )
    to = request.state.user.email
    try:
        composing.send_test(site, campaign, language, to, now_of(request), _=_)
    except NewsletterError as exc:
        return message(request, _("Test not sent"), str(exc), 400)
    audit(request, "test-send", campaign, {"to": to, "language": language, "via": "composer"})
    return RedirectResponse(f"/admin/compose/{campaign}?saved=test-{language}", status_code=303)


def _int(value: Any) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 0


def _escape(text: str) -> str:
    import html

    return html.escape(text)
