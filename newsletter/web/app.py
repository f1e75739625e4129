"""`create_app(site)`: the one Starlette app served by `newsletter serve` and `newsletter run`.

Public and tracking routes come from `newsletter.web.public`, the dashboard from `newsletter.web.admin`.
The lifespan starts the tracking hit writer and, on shutdown, writes every hit still in memory.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from newsletter.site import Site


async def health(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(site: Site) -> Starlette:
    from newsletter.web import admin, calendar
    from newsletter.web.public import Public

    public = Public(site)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        public.hits.start()
        # Everything built so far (modules, templates, routes) lives as long as the process: frozen,
        # the full collections never walk it again (they otherwise pause requests for tens of ms).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await run_in_threadpool(public.hits.stop)

    # Starlette tries routes in order: the tracking routes, the busiest by far, go first.
    routes: list[BaseRoute] = public.routes()
    routes += [Route("/healthz", health)]
    routes += calendar.routes(site)
    routes += admin.routes(site)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.site = site
    app.state.public = public
    return app


def serve(site: Site, host: str | None = None, port: int | None = None) -> None:
    """Serve the app with uvicorn (uvloop + httptools: see bench/track.py) until SIGINT/SIGTERM."""
    import uvicorn

    uvicorn.run(
        create_app(site),
        host=host or site.settings["host"],
        port=int(port if port is not None else site.settings["port"]),
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        proxy_headers=True,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
