"""Schedule page (events, sessions, planned sends; pause, resume, cancel; test copies) and previews."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from newsletter.store import now_utc
from newsletter.web.admin import stages
from newsletter.web.admin.auth import audit, guard, now_of, site_of
from newsletter.web.admin.render import STATUS_LABELS, language_of, message, render, translator

# The rendered message is shown in a sandboxed frame; this policy keeps it from running scripts,
# submitting forms or loading anything but images and inline styles, whatever the template holds.
PREVIEW_CSP = "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *"


def _timeline(site: Any, now: Any, language: str) -> dict[str, Any]:
    planned, plan_error = stages.attempt(stages.plan, site, now, 60)
    events, events_error = stages.attempt(stages.events, site)
    items = []
    for ev in events or []:
        items.append(
            {
                "kind": "event",
                "at": ev.start,
                "title": ev.title.get(language) or ev.title.get(site.default_language, ev.id),
                "id": ev.id,
                "tz": ev.timezone,
                "cancelled": ev.cancelled,
                "send": None,
            }
        )
        for session in ev.sessions:
            items.append(
                {
                    "kind": "session",
                    "at": session.start,
                    "title": f"{ev.id} · {session.language}",
                    "id": session.id,
                    "tz": session.timezone,
                    "cancelled": ev.cancelled,
                    "send": None,
                }
            )
    for send in planned or []:
        items.append(
            {
                "kind": "send",
                "at": send.due,
                "title": send.campaign,
                "id": send.key,
                "tz": send.timezone,
                "cancelled": send.status == "cancelled",
                "send": send,
            }
        )
    items.sort(key=lambda i: i["at"])
    return {
        "items": [i for i in items if i["at"] >= now - timedelta(days=7)],
        "errors": [e for e in (plan_error, events_error) if e],
    }


def _back(request: Request, **values: str) -> str:
    """The schedule page's query after an action: its message, and the `at` it was looked at."""
    at = request.query_params.get("at")
    return urlencode({**values, **({"at": at} if at else {})})


@guard()
def schedule(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    now = now_of(request)
    campaigns, campaigns_error = stages.attempt(stages.campaigns, site)
    return render(
        request,
        "schedule.html",
        {
            "now": now,
            "timeline": _timeline(site, now, language_of(request)),
            "campaigns": campaigns or [],
            "campaigns_error": campaigns_error,
            "languages": site.languages,
            "sent": request.query_params.get("sent", ""),
            "done": request.query_params.get("done", ""),
            "at": request.query_params.get("at", ""),
        },
    )


@guard("staff")
def occurrence_action(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    action = request.path_params["action"]
    occurrence_id = int(request.path_params["occurrence_id"])
    row, error = stages.attempt(stages.change_occurrence, site, occurrence_id, action, now_utc())
    if error:
        _ = translator(request)
        title = _("Could not %(action)s", action=_(STATUS_LABELS.get(action, action)))
        return message(request, title, error, 400)
    key = getattr(row, "key", f"occurrence {occurrence_id}")
    audit(request, action, key, {"occurrence": occurrence_id, "status": getattr(row, "status", None)})
    return RedirectResponse(f"/admin/schedule?{_back(request, done=action)}", status_code=303)


@guard("staff")
def test_send(request: Request, form: FormData | None) -> Response:
    site = site_of(request)
    assert form is not None
    campaign = str(form.get("campaign", ""))
    language = str(form.get("language", ""))
    _ = translator(request)
    if language not in site.languages:
        return message(
            request, _("Test not sent"), _("unknown language %(language)s", language=repr(language)), 400
        )
    user = request.state.user
    _, error = stages.attempt(stages.send_test, site, campaign, language, user.email, now_of(request))
    if error:
        return message(request, _("Test not sent"), error, 400)
    audit(request, "test-send", campaign, {"to": user.email, "language": language})
    return RedirectResponse(
        f"/admin/schedule?{_back(request, sent=f'{campaign}/{language}')}", status_code=303
    )


@guard()
def preview(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    now = now_of(request)
    campaigns, error = stages.attempt(stages.campaigns, site)
    chosen = request.query_params.get("campaign") or (campaigns[0].id if campaigns else "")
    campaign = next((c for c in campaigns or [] if c.id == chosen), None)
    translations, translations_error = stages.attempt(stages.translation_report, site)
    rendered: list[dict[str, Any]] = []
    if campaign is not None:
        for lang in site.languages:
            shown, why = stages.attempt(stages.preview, site, campaign.id, lang, now)
            rendered.append(
                {"language": lang, "written": lang in campaign.languages, "preview": shown, "error": why}
            )
    return render(
        request,
        "preview.html",
        {
            "campaigns": campaigns or [],
            "campaign": campaign,
            "error": error,
            "rendered": rendered,
            "translations": translations,
            "translations_error": translations_error,
        },
    )


@guard()
def preview_frame(request: Request, _form: FormData | None) -> Response:
    site = site_of(request)
    campaign, lang = request.path_params["campaign"], request.path_params["language"]
    if lang not in site.languages:
        _ = translator(request)
        return PlainTextResponse(_("unknown language"), status_code=404)
    shown, why = stages.attempt(stages.preview, site, campaign, lang, now_of(request))
    if shown is None:
        _ = translator(request)
        return PlainTextResponse(_("Not rendered: %(why)s", why=why), status_code=404)
    return HTMLResponse(shown.html, headers={"Content-Security-Policy": PREVIEW_CSP})
