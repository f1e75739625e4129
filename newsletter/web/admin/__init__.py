"""The staff dashboard under /admin: its own Starlette app (sessions, security headers), mounted.

`routes(site)` is the hook `newsletter.web.app.create_app` calls. Organisers read reports; staff also
pause, resume and cancel occurrences, send tests, decide in-doubt batches and unsubscribe people.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.site import Site
from newsletter.web.admin import audit, auth, campaigns, compose, overview, people, schedule
from newsletter.web.admin.session import Codec, SessionMiddleware

STATIC = Path(__file__).resolve().parent.parent / "static" / "admin"
# Scripts and styles only from our own static files: no inline script, no CDN.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


class SecurityHeaders:
    """CSP, no sniffing, no referrer, and no caching of pages that show personal data."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if b"content-security-policy" not in headers:
                    extra.append((b"content-security-policy", CSP.encode()))
                if "/static/" not in scope["path"]:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers) if scope["type"] == "http" else await self.app(
            scope, receive, send
        )


async def _home(_request: Request) -> Response:
    return RedirectResponse("/admin/", status_code=307)


def build(site: Site) -> Starlette:
    """The dashboard app on its own (mounted at /admin by `routes`)."""
    hours = int(site.settings["admin_session_hours"])
    codec = Codec(site.settings["secret_key"], max_age=hours * 3600)
    app = Starlette(
        routes=[
            Route("/", overview.overview),
            Route("/login", auth.login, methods=["GET", "POST"]),
            Route("/logout", auth.logout, methods=["POST"]),
            Route("/language", auth.language, methods=["POST"]),
            Route("/campaigns/{occurrence_id:int}", campaigns.campaign),
            Route("/campaigns/{occurrence_id:int}/figures.csv", campaigns.figures_csv),
            Route("/campaigns/{occurrence_id:int}/clicks.csv", campaigns.clicks_csv),
            Route("/campaign/{name:str}", campaigns.campaign),
            Route("/campaign/{name:str}/figures.csv", campaigns.figures_csv),
            Route("/compare", campaigns.compare),
            Route("/schedule", schedule.schedule),
            Route(
                "/occurrences/{occurrence_id:int}/{action:str}", schedule.occurrence_action, methods=["POST"]
            ),
            Route("/test-send", schedule.test_send, methods=["POST"]),
            Route("/preview", schedule.preview),
            Route("/preview/{campaign:str}/{language:str}.html", schedule.preview_frame),
            Route("/compose", compose.index),
            Route("/compose/new", compose.new),
            Route("/compose/save", compose.save, methods=["POST"]),
            Route("/compose/preview", compose.preview, methods=["POST"]),
            Route("/compose/audience", compose.audience),
            Route("/compose/{campaign:str}", compose.edit),
            Route("/compose/{campaign:str}/test", compose.test_send, methods=["POST"]),
            Route("/batches/{batch_id:int}/decide", overview.decide, methods=["POST"]),
            Route("/subscribers", people.subscribers),
            Route("/subscribers/data.json", people.person_data),
            Route("/subscribers/unsubscribe", people.unsubscribe, methods=["POST"]),
            Route("/subscribers/forget", people.forget_person, methods=["POST"]),
            Route("/audit", audit.audit_page),
            Route("/audit.csv", audit.audit_csv),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders), Middleware(SessionMiddleware, codec=codec)],
    )
    app.state.site = site
    return app


def routes(site: Site) -> list[BaseRoute]:
    return [Route("/admin", _home), Mount("/admin", app=build(site))]
