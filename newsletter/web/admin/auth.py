"""Login, logout, and the guard every dashboard page goes through (login, role, CSRF)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from newsletter import accounts, ratelimit
from newsletter import audit as log
from newsletter.errors import InputError, NewsletterError
from newsletter.site import Site
from newsletter.store import now_utc
from newsletter.web.admin.render import message, render, translator
from newsletter.web.admin.session import CSRF_FIELD, Session
from newsletter.web.catalog import LANGUAGES

Handler = Callable[[Request, FormData | None], Response]


def session_of(request: Request) -> Session:
    return request.scope["admin_session"]  # type: ignore[no-any-return]


def site_of(request: Request) -> Site:
    return request.app.state.site  # type: ignore[no-any-return]


def guard(role: str | None = None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a (sync) page: logged-in user required, `role` if given, a valid CSRF token on POST.

    The page runs in a worker thread, since it talks to the store synchronously.
    """

    def wrap(page: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = session_of(request)
            user = None
            if session.user_id is not None:
                user = await run_in_threadpool(accounts.get_user, site_of(request).store, session.user_id)
            request.state.user = user
            _ = translator(request)
            if user is None:
                if request.method == "GET":
                    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                    return RedirectResponse(f"/admin/login?next={target}", status_code=303)
                return PlainTextResponse(_("Log in first."), status_code=401)
            if role == "staff" and not user.can_send:
                return PlainTextResponse(
                    _("Only staff can do this; organisers see the reports."), status_code=403
                )
            form = None
            if request.method == "POST":
                form = await request.form()
                if not session.csrf_ok(form.get(CSRF_FIELD)):  # type: ignore[arg-type]
                    return PlainTextResponse(
                        _("The form's security token is missing or stale: reload the page and try again."),
                        status_code=403,
                    )
            try:
                return await run_in_threadpool(page, request, form)
            except NewsletterError as exc:
                return message(request, _("Not done"), str(exc), 400)

        return endpoint

    return wrap


def actor_of(request: Request) -> tuple[str, str]:
    """(actor, via) of a dashboard action: the logged-in user, and the method and page."""
    return request.state.user.email, f"web: {request.method} {request.url.path}"


def audit(
    request: Request,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    subject: str | None = None,
) -> None:
    """Record a staff action done in the dashboard (see `newsletter.audit.record`)."""
    actor, via = actor_of(request)
    log.record(site_of(request).store, actor, action, target, details, via, subject=subject)


def now_of(request: Request) -> datetime:
    """The clock of a page: now, or the `?at=` instant when staff look at the plan as of another day."""
    at = request.query_params.get("at", "")
    if at:
        try:
            value = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"at={at!r}: expected an ISO time such as 2021-04-01T09:00Z") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return now_utc()


def _safe_next(value: str | None) -> str:
    # Only paths inside the dashboard: never an absolute or scheme-relative URL (no open redirect).
    if value and value.startswith("/admin") and not value.startswith("//"):
        return value
    return "/admin/"


async def login(request: Request) -> Response:
    session = session_of(request)
    nxt = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login.html", {"next": nxt, "error": ""})
    form = await request.form()
    if not session.csrf_ok(form.get(CSRF_FIELD)):  # type: ignore[arg-type]
        _ = translator(request)
        return PlainTextResponse(
            _("The form's security token is missing or stale: reload the page and try again."),
            status_code=403,
        )
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "")))
    return await run_in_threadpool(_check_login, request, email, password, nxt)


def _check_login(request: Request, email: str, password: str, nxt: str) -> Response:
    site = site_of(request)
    settings = site.settings
    window = timedelta(seconds=int(settings["admin_login_window"]))
    ip = request.client.host if request.client else ""
    keys = [f"login-email:{email}", f"login-ip:{ip}"]
    now = now_utc()
    _ = translator(request)
    if ratelimit.exceeded(site.store, keys, int(settings["admin_login_attempts"]), now):
        minutes = max(1, window.seconds // 60)
        return render(
            request,
            "login.html",
            {
                "next": nxt,
                "error": _("Too many failed logins: try again in %(minutes)s minutes.", minutes=minutes),
            },
            status_code=429,
        )
    user = accounts.authenticate(site.store, email, password)
    if user is None:
        ratelimit.record(site.store, keys, window, now)
        return render(
            request, "login.html", {"next": nxt, "error": _("Wrong email or password.")}, status_code=401
        )
    ratelimit.clear(site.store, [f"login-email:{email}"])
    session_of(request).login(user.id)
    return RedirectResponse(nxt, status_code=303)


@guard()
def language(request: Request, form: FormData | None) -> Response:
    """Store the dashboard language the user picked, then show the page they were on."""
    chosen = str(form.get("language", "")) if form else ""
    if chosen and chosen not in LANGUAGES:
        return PlainTextResponse(f"unknown language {chosen!r}: {', '.join(LANGUAGES)}", status_code=400)
    accounts.set_language(site_of(request).store, request.state.user.id, chosen)
    return RedirectResponse(_safe_next(str(form.get("next", "")) if form else ""), status_code=303)


async def logout(request: Request) -> Response:
    session = session_of(request)
    form = await request.form()
    if session.csrf_ok(form.get(CSRF_FIELD)):  # type: ignore[arg-type]
        session.logout()
    return RedirectResponse("/admin/login", status_code=303)
