"""What every public page needs: the site, the signer, the page templates, language and CSRF checks.

`Public` (the routes) is one; the form pages (`pages.py`) take it as this, so neither imports the other.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from babel import Locale
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter import ratelimit
from newsletter.site import Site
from newsletter.store import now_utc
from newsletter.store.tables import sends, subscribers
from newsletter.tokens import Signer
from newsletter.track.ip import anonymize
from newsletter.urls import read_recipient
from newsletter.web.i18n import N_, negotiate, translations

HERE = Path(__file__).parent
NO_STORE = {"cache-control": "no-store, private", "referrer-policy": "no-referrer"}
CSRF_COOKIE = "nl_csrf"


class PublicContext:
    """The state and helpers shared by the public pages of one site."""

    def __init__(self, site: Site):
        self.site = site
        s = site.settings
        self.signer = Signer(s["secret_key"])
        self.ip_key = hashlib.sha256(b"ip:" + str(s["secret_key"]).encode()).digest()
        self.secure = str(s["base_url"]).startswith("https://")
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates" / "public"),
            autoescape=select_autoescape(["html"]),
        )

    def page(
        self, request: Request, template: str, lang: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(18)
        tr = translations(lang)
        html = self.env.get_template(template).render(
            _=tr.gettext, lang=lang, site_name=self.site.name, csrf=self.signer.sign("csrf", token), **context
        )
        response = HTMLResponse(html, status_code=status_code, headers=NO_STORE)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=self.secure)
        return response

    def message(
        self, request: Request, lang: str, title: str, text: str, status_code: int = 200, kind: str = "notice"
    ) -> HTMLResponse:
        _ = translations(lang).gettext
        return self.page(request, "message.html", lang, status_code, title=_(title), message=text, kind=kind)

    def not_found(self, request: Request, lang: str | None = None) -> HTMLResponse:
        lang = lang or self.language(request)
        _ = translations(lang).gettext
        text = _("This link is not valid. Please check that you copied it completely.")
        return self.message(request, lang, N_("Page not found"), text, 404, "error")

    def language(self, request: Request, preferred: str | None = None) -> str:
        asked = request.query_params.get("lang") or preferred
        if asked and asked in self.site.languages:
            return asked
        return negotiate(
            request.headers.get("accept-language", ""), self.site.languages, self.site.default_language
        )

    def csrf_ok(self, request: Request, form: Any) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        fields = self.signer.read("csrf", str(form.get("csrf", "")))
        return bool(cookie) and fields == [cookie]

    def client_ip(self, request: Request) -> str:
        host = request.client.host if request.client else ""
        return anonymize(host, self.site.settings["ip_privacy"], self.ip_key)

    def recipient(self, r: str) -> Any | None:
        """The subscriber behind a recipient token (None when unknown or forgotten)."""
        send_id = read_recipient(self.signer, r)
        if send_id is None:
            return None
        with self.site.store.read() as conn:
            return conn.execute(
                select(subscribers)
                .join(sends, sends.c.subscriber_id == subscribers.c.id)
                .where(sends.c.id == send_id)
            ).first()

    def language_names(self) -> list[tuple[str, str]]:
        """Each site language named in itself (a reader looks for their own language by its own name)."""
        return [
            (code, Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_")) or code)
            for code in self.site.languages
        ]

    def allow(self, request: Request) -> bool:
        """The per-IP rate limit of subscribe posts (a sliding hour), kept in the store so that it holds
        across instances; the IP is kept only as a keyed hash, and only for that hour."""
        host = request.client.host if request.client else ""
        key = "subscribe-ip:" + anonymize(host, "hash", self.ip_key)
        limit = int(self.site.settings["subscribe_rate_limit"])
        return ratelimit.take(self.site.store, key, limit, timedelta(hours=1), now_utc())
