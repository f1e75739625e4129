"""Jinja templates of the dashboard (newsletter/web/templates/admin), their filters, and their language.

The dashboard speaks the user's language (chosen on the page, stored on the user), else the
browser's Accept-Language, among the web catalogs (`newsletter.web.catalog.LANGUAGES`). Templates
call `_("text", name=value)`; dates, numbers and percentages are written in that locale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.web.catalog import LANGUAGES, SOURCE_LANGUAGE
from newsletter.web.i18n import N_, negotiate, translations

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "admin"
WHEN = "EEE d MMM y HH:mm"  # "mer. 21 avr. 2021 16:00"
# Statuses shown as labels (occurrences, sends, feeds, subscriptions): translated where shown.
STATUS_LABELS = {
    "scheduled": N_("scheduled"),
    "planned": N_("planned"),
    "paused": N_("paused"),
    "cancelled": N_("cancelled"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "missed": N_("missed"),
    "failed": N_("failed"),
    "disabled": N_("disabled"),
    "failing": N_("failing"),
    "ok": N_("ok"),
    "confirmed": N_("confirmed"),
    "unconfirmed": N_("unconfirmed"),
    "unsubscribed": N_("unsubscribed"),
    "bounced": N_("bounced"),
    "complained": N_("complained"),
    "suppressed": N_("suppressed"),
    "pending": N_("pending"),
    "in_doubt": N_("in doubt"),
    "claimed": N_("claimed"),
    "in_flight": N_("in flight"),
    "resend": N_("resend"),
    "event": N_("event"),
    "session": N_("session"),
    "send": N_("send"),
    "pause": N_("paused"),
    "resume": N_("resumed"),
    "cancel": N_("cancelled"),
    "unsubscribe": N_("unsubscribed"),
    "forgotten": N_("forgotten"),
    "staff": N_("staff"),
    "organiser": N_("organiser"),
}

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _locale(ctx: Any) -> str:
    return str(ctx.get("lang") or SOURCE_LANGUAGE)


@jinja2.pass_context
def _number(ctx: Any, value: Any) -> str:
    return "—" if value is None else str(format_decimal(int(value), locale=_locale(ctx)))


@lru_cache(maxsize=16)
def _percent_pattern(language: str) -> str:
    # The locale's own percent pattern ("#,##0 %" in French), with one decimal.
    pattern = Locale.parse(language).percent_formats[None].pattern
    return str(pattern.replace("#,##0", "#,##0.0", 1))


@jinja2.pass_context
def _percent(ctx: Any, value: Any) -> str:
    if value is None:
        return "—"
    lang = _locale(ctx)
    return str(format_percent(value, _percent_pattern(lang), locale=lang))


@jinja2.pass_context
def _when(ctx: Any, value: Any, tz: str = "UTC") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(format_datetime(value, WHEN, tzinfo=ZoneInfo(tz), locale=_locale(ctx)))


def _json_data(value: Any) -> Markup:
    # For <script type="application/json">: "<" escaped so no "</script>" can close the element.
    text = json.dumps(value, ensure_ascii=False, default=str).replace("<", "\\u003c")
    return Markup(text)


env.filters.update(number=_number, percent=_percent, when=_when, json_data=_json_data)


def language_of(request: Request) -> str:
    """The dashboard language: the user's choice, else the browser's, else English."""
    user = getattr(request.state, "user", None)
    chosen = getattr(user, "language", "") if user is not None else ""
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language", ""), LANGUAGES, SOURCE_LANGUAGE)


def gettext_for(language: str) -> Callable[..., str]:
    """`_("Could not %(action)s", action=x)` in `language`."""
    tr = translations(language)

    def _(message: str, **values: Any) -> str:
        text = tr.gettext(message)
        return text % values if values else text

    return _


def ngettext_for(language: str) -> Callable[..., str]:
    """`ngettext("%(num)s recipient", "%(num)s recipients", n, num=...)` in `language`."""
    tr = translations(language)

    def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
        text = tr.ngettext(singular, plural, int(n))
        return text % values if values else text

    return ngettext


def translator(request: Request) -> Callable[..., str]:
    """The `_` of this request's dashboard language, for text written by a handler."""
    return gettext_for(language_of(request))


def language_names() -> list[tuple[str, str]]:
    """Each dashboard language named in itself."""
    return [(code, Locale.parse(code).get_display_name(code) or code) for code in LANGUAGES]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    session = request.scope.get("admin_session")
    lang = language_of(request)
    _ = gettext_for(lang)
    page = env.get_template(name).render(
        request=request,
        user=getattr(request.state, "user", None),
        csrf=session.csrf if session else "",
        path=request.url.path,
        lang=lang,
        languages_ui=language_names(),
        _=_,
        ngettext=ngettext_for(lang),
        status_label=lambda value: _(STATUS_LABELS[value]) if value in STATUS_LABELS else value,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def message(request: Request, title: str, text: str, status_code: int = 400) -> HTMLResponse:
    """A page saying why something was not done (or not found): the dashboard's one answer to refusals."""
    return render(request, "message.html", {"title": title, "message": text}, status_code)
