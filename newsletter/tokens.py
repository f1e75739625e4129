"""Signed, compact, URL-safe tokens for tracking, unsubscribe, preferences and confirmation links.

A token is `base64url(payload) + "." + base64url(mac)`, where the payload is integers and short
strings joined by ":" and the MAC is HMAC-SHA256 (truncated to 96 bits) under a key derived from the
site's secret and the token's purpose, so a click token can never serve as an unsubscribe token.
Tokens with `max_age` carry their issue time. Anything tampered, truncated or expired reads as None.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import time
from typing import Any

from newsletter.ids import parse_id

MAC_BYTES = 12
SHA256_BLOCK = 64
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
    "bounce",
)


# base64url through binascii and bytes.translate: `read` runs on every click and open, and
# base64.urlsafe_b64decode/encode cost several times more in Python-level overhead.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4))


def _keyed(key: bytes, pad: int) -> Any:
    """SHA-256 after one block of `key` XOR `pad` (HMAC's inner or outer state; keys here are 32 bytes)."""
    return hashlib.sha256(bytes(b ^ pad for b in key.ljust(SHA256_BLOCK, b"\0")))


class Signer:
    """Signs and reads tokens for one site secret."""

    def __init__(self, secret: str):
        if not secret:
            raise ValueError("empty secret key")
        master = secret.encode("utf-8")
        self._keys = {
            p: hmac.new(master, b"newsletter-token:" + p.encode(), hashlib.sha256).digest() for p in PURPOSES
        }
        # HMAC (RFC 2104) with its two keyed SHA-256 states computed once per purpose: each MAC then
        # copies them, about three times cheaper than hmac.digest, which sets up a new OpenSSL context.
        self._states = {p: (_keyed(key, 0x36), _keyed(key, 0x5C)) for p, key in self._keys.items()}

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        inner_state, outer_state = self._states[purpose]
        inner = inner_state.copy()
        inner.update(payload)
        outer = outer_state.copy()
        outer.update(inner.digest())
        return outer.digest()[:MAC_BYTES]

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
        body, dot, mac = token.partition(".")
        if not dot or "." in mac or len(token) > 600:
            return None
        try:
            payload = _unb64(body)
            # The MAC is compared in its encoded form: one encode of 12 bytes instead of a decode.
            # MAC_BYTES is a multiple of 3, so that form is canonical (no padding, no spare bits).
            expected = binascii.b2a_base64(self._mac(purpose, payload), newline=False).translate(_TO_URLSAFE)
            if not hmac.compare_digest(expected, mac.encode("ascii")):
                return None
        except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
            return None
        try:
            fields = payload.decode("utf-8").split(":")
        except UnicodeDecodeError:
            return None
        if max_age is not None:
            issued = parse_id(fields[-1][1:]) if fields and fields[-1].startswith("t") else None
            if issued is None:
                return None
            fields.pop()
            if (time.time() if now is None else now) - issued > max_age:
                return None
        return fields
