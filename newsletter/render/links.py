"""Links in a message: the `link(url, label=...)` template helper, UTM parameters, tracking rewrites.

Templates call `{{ link(url, label="declaration-sign-on") }}`; that adds the UTM parameters and notes
the label. After MJML, every http(s) link of the HTML (item summaries included) goes through
`rewrite_links`: UTM parameters, then, when tracked, the signed click URL of its row in the `links`
table (one row per URL per occurrence and language, so re-rendering reuses the same ids).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select

from newsletter.store import Store
from newsletter.store.tables import links

HREF = re.compile(r'href="([^"]*)"')


def with_utm(url: str, campaign_id: str, language: str) -> str:
    """`url` with utm_source/medium/campaign added (parameters already there are kept)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    for key, value in (
        ("utm_source", "newsletter"),
        ("utm_medium", "email"),
        ("utm_campaign", f"{campaign_id}-{language}"),
    ):
        if key not in present:
            query.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


class LinkHelper:
    """The `link()` template function: applies UTM and remembers each URL's label."""

    def __init__(self, campaign_id: str, language: str, base_url: str, utm: bool):
        self.campaign_id = campaign_id
        self.language = language
        self.base_url = base_url
        self.utm = utm
        self.labels: dict[str, str] = {}

    def final(self, url: str) -> str:
        if not self.utm or url.startswith(self.base_url):
            return url
        return with_utm(url, self.campaign_id, self.language)

    def __call__(self, url: str, label: str = "") -> str:
        url = self.final(str(url).strip())
        if label:
            self.labels.setdefault(url, label)
        return url


def collect_links(html_text: str, helper: LinkHelper) -> list[tuple[str, str]]:
    """(final URL, label) of every external http(s) link in `html_text`, first use first."""
    found: dict[str, str] = {}
    for match in HREF.finditer(html_text):
        url = helper.final(html.unescape(match.group(1)))
        if _external(url, helper.base_url):
            found.setdefault(url, helper.labels.get(url, ""))
    return list(found.items())


def rewrite_links(html_text: str, helper: LinkHelper, targets: Mapping[str, str]) -> str:
    """Replace each external href by its target (tracked URL) or at least its UTM'd URL."""

    def replace(match: re.Match[str]) -> str:
        url = helper.final(html.unescape(match.group(1)))
        if not _external(url, helper.base_url):
            return match.group(0)
        return 'href="' + html.escape(targets.get(url, url), quote=True) + '"'

    return HREF.sub(replace, html_text)


def retarget_links(html_text: str, targets: Mapping[str, str]) -> str:
    """Replace each href found in `targets` (final URL -> tracked URL); others are left as they are."""

    def replace(match: re.Match[str]) -> str:
        target = targets.get(html.unescape(match.group(1)))
        return match.group(0) if target is None else 'href="' + html.escape(target, quote=True) + '"'

    return HREF.sub(replace, html_text)


def _external(url: str, base_url: str) -> bool:
    return url.startswith(("http://", "https://")) and not url.startswith(base_url + "/")


def register_links(
    store: Store,
    *,
    occurrence_id: int,
    campaign_id: str,
    language: str,
    found: list[tuple[str, str]],
    now: datetime,
) -> dict[str, int]:
    """The link id of each URL for this (occurrence, language), inserting the rows that are new."""
    with store.write() as conn:
        rows = conn.execute(
            select(links.c.id, links.c.url).where(
                links.c.occurrence_id == occurrence_id, links.c.language == language
            )
        ).all()
        ids = {row.url: int(row.id) for row in rows}
        for url, label in found:
            if url not in ids:
                result = conn.execute(
                    links.insert().values(
                        occurrence_id=occurrence_id,
                        campaign=campaign_id,
                        language=language,
                        url=url,
                        label=label,
                        created_at=now,
                    )
                )
                ids[url] = int(result.inserted_primary_key[0])  # type: ignore[index]
    return ids
