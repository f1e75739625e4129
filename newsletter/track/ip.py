"""What tracking keeps of a client IP: truncated to its /24 or /48 network, a hash, or nothing."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache

MODES = ("truncate", "hash", "none")


@lru_cache(maxsize=65536)  # the same proxies and networks come back again and again
def anonymize(ip: str, mode: str, key: bytes = b"") -> str:
    """The stored form of `ip` under the `ip_privacy` setting; "" for no or unparsable addresses."""
    if mode == "none" or not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if mode == "hash":
        # Keyed, so the 2^32 IPv4 addresses cannot be hashed in bulk to reverse it.
        return hmac.new(key, address.packed, hashlib.sha256).hexdigest()[:32]
    if mode != "truncate":
        raise ValueError(f"ip_privacy: expected one of {', '.join(MODES)}; got {mode!r}")
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
