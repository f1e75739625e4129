"""Public pages and tracking routes (opens, clicks, unsubscribe, preferences, subscribe, webhook)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from newsletter.site import Site


def routes(site: Site) -> list[BaseRoute]:
    return []
