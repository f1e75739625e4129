"""The public form pages: preferences, the subscribe form and the confirmation page (thin handlers)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.audience import preferences, signup
from newsletter.audience.personal import personal_data
from newsletter.audience.subscribers import check_timezone
from newsletter.errors import InputError
from newsletter.send import notices
from newsletter.store import now_utc
from newsletter.store.tables import lists, subscribers
from newsletter.web.context import PublicContext
from newsletter.web.i18n import N_, translations

log = logging.getLogger(__name__)


async def show_preferences(
    pub: PublicContext, request: Request, r: str, person: Any, *, saved: bool = False, error: str = ""
) -> Response:
    lang = pub.language(request, person.language)
    items = await run_in_threadpool(preferences.lists_for, pub.site.store, person.id, lang)
    return pub.page(
        request,
        "preferences.html",
        lang,
        r=r,
        languages=pub.language_names(),
        person_language=person.language,
        timezone=person.timezone,
        lists=items,
        saved=saved,
        error=error,
    )


async def apply_preferences(pub: PublicContext, request: Request, r: str, person: Any) -> Response:
    form = await request.form()
    lang = pub.language(request, person.language)
    _ = translations(lang).gettext
    if not pub.csrf_ok(request, form):
        text = _("Your session has expired. Please reload the page and try again.")
        return pub.message(request, lang, N_("Your preferences"), text, 403, "error")
    ip = pub.client_ip(request)
    if form.get("action") == "leave":
        await run_in_threadpool(
            preferences.leave_all, pub.site.store, person.id, source="preferences", ip=ip, now=now_utc()
        )
        return pub.message(request, lang, N_("You are unsubscribed"), _("You have left every list."))
    language = str(form.get("language", person.language))
    if language not in pub.site.languages:
        language = person.language
    try:
        timezone = check_timezone(str(form.get("timezone", person.timezone)).strip() or "UTC")
    except InputError:
        return await show_preferences(pub, request, r, person, error=_("Unknown time zone."))
    wanted = {str(v) for v in form.getlist("list")}
    await run_in_threadpool(
        lambda: preferences.save(
            pub.site.store,
            person.id,
            language=language,
            timezone=timezone,
            wanted=wanted,
            ip=ip,
            now=now_utc(),
        )
    )
    fresh = await run_in_threadpool(pub.recipient, r)
    return await show_preferences(pub, request, r, fresh or person, saved=True)


async def download_data(pub: PublicContext, person: Any) -> Response:
    """The person's own data as a JSON download (their link is the proof that it is them)."""
    data = await run_in_threadpool(personal_data, pub.site.store, person.id, now_utc())
    return data_response(data, person.id)


def data_response(data: Any, subscriber_id: int) -> Response:
    """A personal data export as a JSON attachment, never cached."""
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="my-data-{subscriber_id}.json"',
            "cache-control": "no-store, private",
            "referrer-policy": "no-referrer",
        },
    )


async def subscribe(pub: PublicContext, request: Request) -> Response:
    slug = request.path_params["slug"]
    with pub.site.store.read() as conn:
        mlist = signup.public_list(conn, slug)
    lang = pub.language(request)
    if mlist is None:
        return pub.not_found(request, lang)
    _ = translations(lang).gettext
    context: dict[str, Any] = {
        "slug": slug,
        "list_name": (mlist.name or {}).get(lang) or (mlist.name or {}).get(mlist.default_language) or slug,
        "description": (mlist.description or {}).get(lang, ""),
        "languages": pub.language_names(),
        "email": "",
        "name": "",
        "error": "",
    }
    if request.method == "GET":
        return pub.page(request, "subscribe.html", lang, **context)
    form = await request.form()
    context.update(email=str(form.get("email", ""))[:320], name=str(form.get("name", ""))[:200])
    if not pub.csrf_ok(request, form):
        context["error"] = _("Your session has expired. Please reload the page and try again.")
        return pub.page(request, "subscribe.html", lang, 403, **context)
    check_title, check_text = (
        N_("Check your inbox"),
        _("We have sent you an email. Click the link in it to confirm your subscription."),
    )
    if form.get("website"):
        # The honeypot: a person never fills it; a bot gets the same answer and nothing is stored.
        return pub.message(request, lang, check_title, check_text)
    ip = pub.client_ip(request)
    if not await run_in_threadpool(pub.allow, request):
        return pub.message(request, lang, N_("Too many attempts"), _("Please try again later."), 429, "error")
    choice = str(form.get("language", lang))
    wish = signup.Request(slug, context["email"], context["name"], choice, ip, detail=f"form {slug}")

    def record() -> signup.Outcome | None:
        with pub.site.store.write() as conn:
            return signup.request(conn, wish, now=now_utc())

    try:
        outcome = await run_in_threadpool(record)
    except InputError:
        context["error"] = _("Please enter a valid email address.")
        return pub.page(request, "subscribe.html", lang, 400, **context)
    if outcome is None:
        return pub.not_found(request, lang)
    await run_in_threadpool(_mail, pub, outcome)
    return pub.message(request, lang, check_title, check_text)


def _mail(pub: PublicContext, outcome: signup.Outcome) -> bool:
    try:
        return notices.send_signup_mail(pub.site, outcome, now=time.time())
    except Exception:  # the subscription is recorded; a failed mail must not lose it or show a 500
        log.exception("could not send the %s mail", outcome.mail)
        return False


async def confirm(pub: PublicContext, request: Request) -> Response:
    token = request.path_params["token"]
    max_age = float(pub.site.settings["confirm_max_age"])
    found = signup.read_confirmation(pub.signer, token, max_age, time.time())
    lang = pub.language(request)
    _ = translations(lang).gettext
    if found is None:
        text = _("This link has expired or is not valid.")
        return pub.message(request, lang, N_("Page not found"), text, 404, "error")
    subscriber_id, list_id = found
    with pub.site.store.read() as conn:
        person = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        mlist = conn.execute(select(lists).where(lists.c.id == list_id)).first()
    if person is None or mlist is None:
        return pub.not_found(request, lang)
    lang = pub.language(request, person.language)
    _ = translations(lang).gettext
    name = (mlist.name or {}).get(lang) or mlist.slug
    if request.method == "GET":
        # Mail scanners follow links: a GET only shows the button, the POST confirms.
        return pub.page(request, "confirm.html", lang, token=token, list_name=name)
    form = await request.form()
    if not pub.csrf_ok(request, form):
        text = _("Your session has expired. Please reload the page and try again.")
        return pub.message(request, lang, N_("Confirm your subscription"), text, 403, "error")
    ip = pub.client_ip(request)

    def apply() -> str | None:
        with pub.site.store.write() as conn:
            return signup.confirm(conn, subscriber_id, list_id, ip=ip, now=now_utc())

    state = await run_in_threadpool(apply)
    if state != "confirmed":
        return pub.message(
            request, lang, N_("Page not found"), _("This link has expired or is not valid."), 404, "error"
        )
    text = _("Thank you! You are now subscribed to %(list)s.") % {"list": name}
    return pub.message(request, lang, N_("Subscription confirmed"), text)
