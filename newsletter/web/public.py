"""Public pages and tracking routes: opens, clicks, unsubscribe, preferences, subscribe, archive, webhook.

Handlers are thin: read the signed token, call the core (`track`, `audience.status`,
`audience.signup`), answer. The tracking routes never wait for the database: a hit goes into the
`HitBuffer`, which the app's lifespan starts and, on shutdown, drains.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from newsletter.audience import status as substatus
from newsletter.errors import NewsletterError
from newsletter.ids import parse_id
from newsletter.site import Site
from newsletter.store import now_utc
from newsletter.track import webhook
from newsletter.track.buffer import HitBuffer
from newsletter.track.hits import Policy
from newsletter.track.links import Link, LinkCache
from newsletter.urls import read_link, read_recipient
from newsletter.web import pages
from newsletter.web.context import HERE, NO_STORE, PublicContext
from newsletter.web.i18n import N_, translations

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
ANONYMOUS = "-"  # the recipient part of links in archive copies: a click, but nobody's
ONE_CLICK = ("List-Unsubscribe", "One-Click")


class Public(PublicContext):
    """The state behind the public routes of one site."""

    def __init__(self, site: Site):
        super().__init__(site)
        s = site.settings
        self.links = LinkCache(site.store)
        self.policy = Policy(s["ip_privacy"], self.ip_key, bool(s["track_individual"]))
        self.hits = HitBuffer(
            site.store, self.links, self.policy, float(s["hit_flush_interval"]), writer=s["hit_writer"]
        )
        self._archive: dict[tuple[int, str], str] = {}
        self.link_tokens: dict[str, Link] = {}
        # User agents as received -> one shared str each: a few hundred make up nearly all traffic,
        # and a shared object is pickled once per batch to the writer (25 bytes a hit instead of 120).
        self._agents: dict[bytes, str] = {}
        self.redirects: dict[int, Response] = {}
        self._loading: dict[int, asyncio.Future[Link | None]] = {}
        self.conversion_param = str(s["conversion_param"])
        from newsletter.web.archive import Archive

        self.archive = Archive(self)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/c/{link}/{r}", self.click, methods=["GET", "HEAD"]),
            Route("/o/{r}.gif", self.open_pixel, methods=["GET"]),
            Route("/s/{token}.gif", self.conversion, methods=["GET"]),
            Route("/u/{r}", self.unsubscribe, methods=["GET", "POST"]),
            Route("/p/{r}", self.preferences, methods=["GET", "POST"]),
            Route("/p/{r}/data.json", self.my_data, methods=["GET"]),
            Route("/subscribe/{slug}", self.subscribe, methods=["GET", "POST"]),
            Route("/confirm/{token}", self.confirm, methods=["GET", "POST"]),
            Route("/v/{token}", self.view, methods=["GET"]),
            Route("/archive/{slug}/{lang}.xml", self.archive.feed, methods=["GET"]),
            Route("/archive/{slug}/{lang}", self.archive.page, methods=["GET"]),
            Route("/webhooks/sendgrid", self.sendgrid, methods=["POST"]),
            Mount("/static/public", StaticFiles(directory=HERE / "static" / "public"), name="public-static"),
        ]

    # ------------------------------------------------------------------ tracking

    def _hit(self, request: Request, kind: str, send_id: int | None, link_id: int | None) -> None:
        # Straight from the ASGI scope: the hot path of every open and click.
        scope = request.scope
        client = scope.get("client")
        ua = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                ua = value
                break
        ip = client[0] if client else ""
        agent = self._agents.get(ua)
        if agent is None:
            if len(self._agents) >= 10_000:
                self._agents.clear()
            agent = self._agents[ua] = ua.decode("latin-1")
        self.hits.add((kind, send_id, link_id, scope["method"], agent, ip, time.time()))  # a RawHit

    async def open_pixel(self, request: Request) -> Response:
        try:
            send_id = read_recipient(self.signer, request.path_params["r"])
            if send_id is not None:
                self._hit(request, "open", send_id, None)
        except Exception:  # noqa: BLE001 - the pixel must answer whatever happens to the hit
            pass
        return Response(GIF, media_type="image/gif", headers=NO_STORE)

    async def click(self, request: Request) -> Response:
        token, r = request.path_params["link"], request.path_params["r"]
        send_id = None if r == ANONYMOUS else read_recipient(self.signer, r)
        if send_id is None and r != ANONYMOUS:
            return self.not_found(request)
        # A link token is shared by every recipient of a message, so its verdict is remembered.
        link = self.link_tokens.get(token)
        if link is None:
            link = await self._link(token)
            if link is None:
                return self.not_found(request)
        self._hit(request, "click", send_id, link.id)
        param = self.conversion_param
        if not param:
            return self.redirects[link.id]  # the same bytes for every recipient
        target = _with_param(link.url, param, self.signer.sign("conversion", link.id, send_id or 0))
        return Response(status_code=302, headers={"location": target, **NO_STORE})

    async def _link(self, token: str) -> Link | None:
        """The stored link a valid token names (only http(s) targets: never a redirect elsewhere)."""
        link_id = read_link(self.signer, token)
        if link_id is None:
            return None
        link = self.links.cached(link_id)
        if link is None:
            # Right after a send many clicks reach a fresh link at once: one store read serves them all.
            loading = self._loading.get(link_id)
            if loading is None:
                loading = asyncio.ensure_future(run_in_threadpool(self.links.get, link_id))
                self._loading[link_id] = loading
                loading.add_done_callback(lambda _done: self._loading.pop(link_id, None))
            link = await loading
        if link is None or urlsplit(link.url).scheme not in ("http", "https"):
            return None
        if len(self.link_tokens) >= 100_000:
            self.link_tokens.clear()
            self.redirects.clear()
        # A Response is an ASGI app that sends fixed bytes: one per link serves every click.
        self.redirects[link.id] = Response(status_code=302, headers={"location": link.url, **NO_STORE})
        self.link_tokens[token] = link
        return link

    async def conversion(self, request: Request) -> Response:
        fields = self.signer.read("conversion", request.path_params["token"])
        ids = [parse_id(f) for f in fields or ()]
        if len(ids) == 2 and ids[0] is not None and ids[1] is not None:
            self._hit(request, "conversion", ids[1] or None, ids[0])
        return Response(GIF, media_type="image/gif", headers=NO_STORE)

    async def sendgrid(self, request: Request) -> Response:
        s = self.site.settings
        limit = int(s["webhook_max_bytes"])
        try:
            declared = request.headers.get("content-length") or "0"
            if not (declared.isascii() and declared.isdigit()) or int(declared) > limit:
                raise webhook.Refused(413, f"body over {limit} bytes")
            received = bytearray()  # grows in place: bytes += would copy the whole body per chunk
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    raise webhook.Refused(413, f"body over {limit} bytes")
            body = bytes(received)
            webhook.verify(
                s["sendgrid_webhook_public_key"],
                request.headers.get(webhook.SIGNATURE_HEADER, ""),
                request.headers.get(webhook.TIMESTAMP_HEADER, ""),
                body,
                now=time.time(),
                max_age=float(s["webhook_max_age"]),
            )
            items = webhook.parse(body)
        except webhook.Refused as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        result = await run_in_threadpool(
            webhook.ingest,
            self.site.store,
            items,
            ip_privacy=s["ip_privacy"],
            ip_key=self.ip_key,
            soft_bounce_limit=int(s["soft_bounce_limit"]),
        )
        return JSONResponse(
            {"stored": result.stored, "duplicates": result.duplicates, "errors": result.errors[:50]}
        )

    # ------------------------------------------------------------------ pages

    async def unsubscribe(self, request: Request) -> Response:
        r = request.path_params["r"]
        person = await run_in_threadpool(self.recipient, r)
        if person is None:
            return self.not_found(request)
        lang = self.language(request, person.language)
        _ = translations(lang).gettext
        if request.method == "GET":
            return self.page(request, "unsubscribe.html", lang, r=r, masked=_mask(person.email))
        form = await request.form()
        one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
        if not one_click and not self.csrf_ok(request, form):
            return self.message(
                request,
                lang,
                N_("Unsubscribe"),
                _("Your session has expired. Please reload the page and try again."),
                403,
                "error",
            )
        ip = self.client_ip(request)

        def leave() -> None:
            with self.site.store.write() as conn:
                substatus.leave(
                    conn,
                    person.id,
                    "unsubscribed",
                    source="one-click" if one_click else "page",
                    ip=ip,
                    now=now_utc(),
                )

        await run_in_threadpool(leave)
        if one_click:
            return PlainTextResponse("unsubscribed", headers=NO_STORE)
        return self.message(
            request, lang, N_("You are unsubscribed"), _("You will not receive these emails any more.")
        )

    async def preferences(self, request: Request) -> Response:
        r = request.path_params["r"]
        person = await run_in_threadpool(self.recipient, r)
        if person is None:
            return self.not_found(request)
        if request.method == "GET":
            return await pages.show_preferences(self, request, r, person)
        return await pages.apply_preferences(self, request, r, person)

    async def my_data(self, request: Request) -> Response:
        person = await run_in_threadpool(self.recipient, request.path_params["r"])
        if person is None:
            return self.not_found(request)
        return await pages.download_data(self, person)

    async def subscribe(self, request: Request) -> Response:
        return await pages.subscribe(self, request)

    async def confirm(self, request: Request) -> Response:
        return await pages.confirm(self, request)

    async def view(self, request: Request) -> Response:
        fields = self.signer.read("view", request.path_params["token"])
        occurrence_id = parse_id(fields[0]) if fields and len(fields) == 2 else None
        if occurrence_id is None or fields is None or fields[1] not in self.site.languages:
            return self.not_found(request)
        key = (occurrence_id, fields[1])
        if key not in self._archive:
            try:
                html = await run_in_threadpool(_archive_copy, self.site, *key)
            except NewsletterError:
                return self.not_found(request, fields[1])
            self._archive[key] = html
        return HTMLResponse(self._archive[key], headers={"cache-control": "public, max-age=300"})


def _archive_copy(site: Site, occurrence_id: int, language: str) -> str:
    """The occurrence's message in one language for nobody in particular: no name, times in UTC."""
    from newsletter.render.assemble import prepare_occurrence
    from newsletter.render.message import Recipient
    from newsletter.schedule.load import load_schedules

    prepared = prepare_occurrence(site, load_schedules(site), occurrence_id, language, now_utc())
    # send 0 is in no ledger: clicks from the archive count for the campaign, for no one.
    nobody = Recipient(send_id=0, email="", name="", language=language, timezone="UTC")
    return prepared.personalise(prepared.html, nobody)


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}"


def routes(site: Site) -> list[BaseRoute]:
    """The public routes of `site` (a fresh `Public`; `create_app` keeps its own to flush on shutdown)."""
    return Public(site).routes()
