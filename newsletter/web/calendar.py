"""Public calendar routes: the .ics file of an event or session, and redirects to Google and Outlook.

No personal data and no token: an event's times are public. The files are built from the current
schedules.yaml (read again when it changes), so a link mailed before a session moved gives the new
time, with a higher SEQUENCE. Redirects go only to the two calendar sites, with our own data.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.campaigns import Schedules
from newsletter.errors import ConfigError
from newsletter.render import ics
from newsletter.render.calendar import publish
from newsletter.site import Site


class CalendarFiles:
    """The site's events as calendar entries, with the schedules reloaded when the file changes."""

    def __init__(self, site: Site):
        self.site = site
        self.host = ics.host_of(str(site.settings["base_url"]))
        self._lock = threading.Lock()
        self._key: tuple[float, int] | None = None
        self._schedules: Schedules | None = None

    def schedules(self) -> Schedules:
        from newsletter.schedule.config import load_schedules

        path = self.site.schedules_file
        st = path.stat() if path.exists() else None
        key = (st.st_mtime, st.st_size) if st else (0.0, 0)
        with self._lock:
            if self._schedules is None or key != self._key:
                try:
                    self._schedules = load_schedules(self.site)
                    self._key = key
                except ConfigError:
                    if self._schedules is None:  # a broken edit keeps the last valid calendar
                        raise
            return self._schedules

    def entry(self, event_id: str, session_id: str, language: str) -> ics.Entry | None:
        event = self.schedules().events.get(event_id)
        if event is None:
            return None
        session = event.session(session_id) if session_id else None
        if session_id and session is None:
            return None
        if language not in self.site.languages:
            language = self.site.default_language
        return ics.entry(event, session, language, self.site.fallback_chain, self.host)

    def document(self, item: ics.Entry, now: datetime) -> bytes:
        [(published, sequence)] = publish(self.site.store, [item], now)
        return ics.to_ics([(published, sequence)], now)


def routes(site: Site) -> list[BaseRoute]:
    files = CalendarFiles(site)

    def target(request: Request) -> tuple[str, str, str]:
        params: dict[str, Any] = request.path_params
        return str(params["event"]), str(params.get("session", "")), request.query_params.get("lang", "")

    async def ics_file(request: Request) -> Response:
        event_id, session_id, lang = target(request)
        item = await run_in_threadpool(files.entry, event_id, session_id, lang)
        if item is None:
            return PlainTextResponse("no such event or session", status_code=404)
        body = await run_in_threadpool(files.document, item, datetime.now(UTC))
        name = f"{event_id}-{session_id}.ics" if session_id else f"{event_id}.ics"
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "max-age=300"},
        )

    def redirect(build: Any) -> Any:
        async def handler(request: Request) -> Response:
            event_id, session_id, lang = target(request)
            item = await run_in_threadpool(files.entry, event_id, session_id, lang)
            if item is None:
                return PlainTextResponse("no such event or session", status_code=404)
            return RedirectResponse(build(item), status_code=302)

        return handler

    google, outlook = redirect(ics.google_url), redirect(ics.outlook_url)
    return [
        Route("/ics/{event}.ics", ics_file, methods=["GET", "HEAD"]),
        Route("/ics/{event}/{session}.ics", ics_file, methods=["GET", "HEAD"]),
        Route("/ics/{event}/google", google, methods=["GET", "HEAD"]),
        Route("/ics/{event}/outlook", outlook, methods=["GET", "HEAD"]),
        Route("/ics/{event}/{session}/google", google, methods=["GET", "HEAD"]),
        Route("/ics/{event}/{session}/outlook", outlook, methods=["GET", "HEAD"]),
    ]
