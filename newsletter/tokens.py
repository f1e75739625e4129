"""Signed, compact, URL-safe tokens for tracking, unsubscribe, preferences and confirmation links.

A token is `base64url(payload) + "." + base64url(mac)`, where the payload is integers and short
strings joined by ":" and the MAC is HMAC-SHA256 (truncated to 96 bits) under a key derived from the
site's secret and the token's purpose, so a click token can never serve as an unsubscribe token.
Tokens with `max_age` carry their issue time. Anything tampered, truncated or expired reads as None.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

MAC_BYTES = 12
PURPOSES = (
    "recipient",
    "link",
    "click",
    "open",
    "unsubscribe",
    "preferences",
    "confirm",
    "view",
    "conversion",
    "csrf",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and reads tokens for one site secret."""

    def __init__(self, secret: str):
        if not secret:
            raise ValueError("empty secret key")
        master = secret.encode("utf-8")
        self._keys = {
            p: hmac.new(master, b"newsletter-token:" + p.encode(), hashlib.sha256).digest() for p in PURPOSES
        }

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.digest(self._keys[purpose], payload, "sha256")[:MAC_BYTES]

    def sign(self, purpose: str, *fields: int | str, issued: int | None = None) -> str:
        """A token for `fields` (no field may contain ':'). `issued`: epoch seconds, for max_age."""
        parts = [str(f) for f in fields]
        if any(":" in p for p in parts):
            raise ValueError("token fields may not contain ':'")
        if issued is not None:
            parts.append(f"t{issued}")
        payload = ":".join(parts).encode("utf-8")
        return _b64(payload) + "." + _b64(self._mac(purpose, payload))

    def sign_timed(self, purpose: str, *fields: int | str, now: float | None = None) -> str:
        return self.sign(purpose, *fields, issued=int(time.time() if now is None else now))

    def read(
        self, purpose: str, token: str, *, max_age: float | None = None, now: float | None = None
    ) -> list[str] | None:
        """The fields of a valid token, or None (bad signature, malformed, or older than max_age)."""
        if not token or token.count(".") != 1 or len(token) > 600:
            return None
        body, mac = token.split(".")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given, self._mac(purpose, payload)):
            return None
        try:
            fields = payload.decode("utf-8").split(":")
        except UnicodeDecodeError:
            return None
        if max_age is not None:
            if not fields or not fields[-1].startswith("t") or not fields[-1][1:].isdigit():
                return None
            issued = int(fields.pop()[1:])
            if (time.time() if now is None else now) - issued > max_age:
                return None
        return fields
