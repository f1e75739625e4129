"""Honest counts: tell machine opens and suspected bot clicks from people (pure, no I/O, no clock).

Machine opens: SendGrid's `sg_machine_open`, and Apple Mail Privacy Protection, whose proxies fetch
every pixel on delivery from Apple's network (17.0.0.0/8) with a bare "Mozilla/5.0" user agent.
Suspected bot clicks: HEAD requests, user agents of link scanners and HTTP libraries, a click within
a few seconds of the message being handed over, and every link of one message clicked within a second.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

# A person needs longer than this after delivery to open a message and click; scanners do not.
CLICK_AFTER_DELIVERY = timedelta(seconds=5)
# Every link of a message clicked within this window: a scanner walking the links.
BURST_WINDOW = timedelta(seconds=1)

_APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
_APPLE_PROXY_UA = "Mozilla/5.0"

_SCANNERS = re.compile(
    r"bot\b|crawler|spider|scanner|preview|safelinks|urldefense|proofpoint|mimecast|barracuda|"
    r"messagelabs|symantec|forcepoint|ironport|cisco|zscaler|fireeye|trendmicro|trend micro|sophos|"
    r"avanan|checkpoint|paloalto|headlesschrome|phantomjs|python-requests|python-urllib|aiohttp|"
    r"httpx|curl/|wget/|go-http-client|java/|okhttp|libwww|apache-httpclient|microsoft office|"
    r"ms-office|outlook-ios-linkpreview|skypeuripreview|slackbot|whatsapp|facebookexternalhit",
    re.IGNORECASE,
)


@lru_cache(maxsize=65536)
def is_apple_proxy(user_agent: str, ip: str) -> bool:
    """An Apple Mail Privacy Protection prefetch: Apple's network, or its bare proxy user agent."""
    try:
        in_apple = ipaddress.ip_address(ip) in _APPLE_NETWORK if ip else False
    except ValueError:
        in_apple = False
    return in_apple or user_agent.strip() == _APPLE_PROXY_UA


def machine_open(user_agent: str, ip: str, sg_machine_open: bool = False) -> bool:
    return bool(sg_machine_open) or is_apple_proxy(user_agent, ip)


@lru_cache(maxsize=16384)  # a few hundred distinct user agents make up nearly all traffic
def scanner_agent(user_agent: str) -> bool:
    """No user agent at all, or one of a link scanner, preview fetcher or HTTP library."""
    return not user_agent.strip() or _SCANNERS.search(user_agent) is not None


def bot_click(
    method: str, user_agent: str, clicked_at: datetime, delivered_at: datetime | None = None
) -> bool:
    """A click that is most likely a machine (the burst rule is `burst_sends`, it needs the batch)."""
    if method.upper() == "HEAD" or scanner_agent(user_agent):
        return True
    return delivered_at is not None and clicked_at - delivered_at < CLICK_AFTER_DELIVERY


class Click(NamedTuple):
    send_id: int
    link_id: int
    at: datetime


def burst_sends(clicks: Iterable[Click], links_per_send: Mapping[int, int]) -> set[int]:
    """Sends whose every link (at least two) was clicked within BURST_WINDOW.

    `links_per_send` maps send id to the number of tracked links in its message.
    """
    by_send: dict[int, list[Click]] = {}
    for click in clicks:
        by_send.setdefault(click.send_id, []).append(click)
    flagged: set[int] = set()
    for send_id, rows in by_send.items():
        wanted = links_per_send.get(send_id, 0)
        if wanted < 2:
            continue
        rows.sort(key=lambda c: c.at)
        # Slide a window over the clicks: does any one-second span hold every link?
        start = 0
        for end in range(len(rows)):
            while rows[end].at - rows[start].at > BURST_WINDOW:
                start += 1
            if len({c.link_id for c in rows[start : end + 1]}) >= wanted:
                flagged.add(send_id)
                break
    return flagged
