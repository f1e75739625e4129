"""`create_app(site)`: the one Starlette app served by `newsletter serve` and `newsletter run`.

Public and tracking routes come from `newsletter.web.public`, the dashboard from `newsletter.web.admin`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from newsletter.site import Site


async def health(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(site: Site) -> Starlette:
    from newsletter.web import admin, public

    routes: list[BaseRoute] = [Route("/healthz", health)]
    routes += public.routes(site)
    routes += admin.routes(site)
    app = Starlette(routes=routes)
    app.state.site = site
    return app
