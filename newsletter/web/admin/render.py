"""Jinja templates of the dashboard (newsletter/web/templates/admin) and their filters."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "admin"

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _number(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}".replace(",", "\u202f")


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}\u202f%"


def _when(value: Any, tz: str = "UTC") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.astimezone(ZoneInfo(tz)).strftime("%a %d %b %Y %H:%M"))


def _json_data(value: Any) -> Markup:
    # For <script type="application/json">: "<" escaped so no "</script>" can close the element.
    text = json.dumps(value, ensure_ascii=False, default=str).replace("<", "\\u003c")
    return Markup(text)


env.filters.update(number=_number, percent=_percent, when=_when, json_data=_json_data)


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    session = request.scope.get("admin_session")
    page = env.get_template(name).render(
        request=request,
        user=getattr(request.state, "user", None),
        csrf=session.csrf if session else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)
