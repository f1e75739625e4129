"""Signed session cookies for the dashboard, and the middleware that reads them.

The cookie holds the user id, a CSRF secret and the issue time, signed with a key derived from the
site's secret: no server-side session store, so any app instance behind a load balancer can read
it. It is HttpOnly, SameSite=Lax, and Secure whenever the dashboard is reached over https.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "nl_admin"
CSRF_FIELD = "csrf"


@dataclass
class Session:
    user_id: int | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    issued: int = field(default_factory=lambda: int(time.time()))
    changed: bool = False
    cleared: bool = False

    def login(self, user_id: int) -> None:
        # A fresh CSRF secret and issue time at login: nothing from before the login carries over.
        self.user_id, self.csrf, self.issued = user_id, secrets.token_urlsafe(24), int(time.time())
        self.changed = True

    def logout(self) -> None:
        self.user_id, self.cleared, self.changed = None, True, True

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf)


class Codec:
    """Encodes and checks the cookie value: base64(json) "." base64(HMAC-SHA256)."""

    def __init__(self, secret: str, max_age: int):
        self._key = hmac.new(secret.encode(), b"newsletter-admin-session", hashlib.sha256).digest()
        self.max_age = max_age

    def dump(self, session: Session) -> str:
        body = base64.urlsafe_b64encode(
            json.dumps({"u": session.user_id, "c": session.csrf, "t": session.issued}).encode()
        ).decode()
        mac = base64.urlsafe_b64encode(hmac.digest(self._key, body.encode(), "sha256")).decode()
        return f"{body}.{mac}"

    def load(self, value: str | None, now: float | None = None) -> Session | None:
        if not value or value.count(".") != 1 or len(value) > 1000:
            return None
        body, mac = value.split(".")
        expected = base64.urlsafe_b64encode(hmac.digest(self._key, body.encode(), "sha256")).decode()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
            session = Session(user_id=data["u"], csrf=str(data["c"]), issued=int(data["t"]))
        except (ValueError, KeyError, TypeError):
            return None
        if (time.time() if now is None else now) - session.issued > self.max_age:
            return None
        return session


class SessionMiddleware:
    """Puts `scope["admin_session"]` on each request and writes the cookie back when it changed."""

    def __init__(self, app: ASGIApp, codec: Codec, path: str = "/admin"):
        self.app, self.codec, self.path = app, codec, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        loaded = self.codec.load(conn.cookies.get(COOKIE))
        session = loaded or Session(changed=True)
        scope["admin_session"] = session
        secure = conn.url.scheme == "https" or conn.headers.get("x-forwarded-proto") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.changed:
                headers = MutableHeaders(scope=message)
                attrs = f"Path={self.path}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
                if session.cleared:
                    headers.append("Set-Cookie", f"{COOKIE}=; Max-Age=0; {attrs}")
                else:
                    headers.append(
                        "Set-Cookie",
                        f"{COOKIE}={self.codec.dump(session)}; Max-Age={self.codec.max_age}; {attrs}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
