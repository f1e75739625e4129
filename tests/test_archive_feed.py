"""The public archive of a list: past issues of archived campaigns, newest first, localized, with an Atom
feed (parsed with feedparser and checked against RFC 4287), and no personal token anywhere; both stores."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import httpx
from sqlalchemy import select, update

from newsletter import urls
from newsletter.audience.importer import import_csv
from newsletter.schedule.load import load_schedules
from newsletter.schedule.occurrences import create_adhoc
from newsletter.send.engine import send_occurrence
from newsletter.site import Site
from newsletter.store.tables import occurrences, sends
from newsletter.tokens import Signer

ATOM = "{http://www.w3.org/2005/Atom}"
SAMPLE = "lists/sample-subscribers.csv"


def _send(site: Site, campaign: str, at: datetime, event: str | None = None) -> int:
    schedules = load_schedules(site)
    occurrence = create_adhoc(site.store, schedules, campaign, event_id=event, now=at)
    send_occurrence(site, occurrence, at, schedules)
    with site.store.write() as conn:  # sent "at" that time, so the archive has an order to keep
        conn.execute(update(occurrences).where(occurrences.c.id == occurrence).values(due_at=at))
    return occurrence


def _check_rfc4287(body: bytes) -> ET.Element:
    """The elements RFC 4287 requires (4.1.1, 4.1.2): one id, title, updated each; an author; dates."""
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"

    def one(parent: ET.Element, name: str) -> str:
        found = parent.findall(f"{ATOM}{name}")
        assert len(found) == 1, (parent.tag, name, len(found))
        return found[0].text or ""

    for name in ("id", "title", "updated"):
        assert one(root, name)
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    for entry in root.findall(f"{ATOM}entry"):
        assert one(entry, "id").startswith("http") and one(entry, "title")
        for name in ("updated", "published"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", one(entry, name))
        assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
    return root


def test_archive_page_and_feed_list_past_issues_without_personal_tokens(site: Site, live_server: Any) -> None:
    import_csv(site, site.root / SAMPLE, "members", consent="the tour's sample")
    base = datetime(2021, 5, 3, 8, tzinfo=UTC)
    first = _send(site, "weekly-digest", base)
    second = _send(site, "weekly-digest", base + timedelta(days=7))
    not_archived = _send(site, "signon-3d", base + timedelta(days=8), event="declaration-deadline")
    signer = Signer(site.settings["secret_key"])
    with site.store.read() as conn:
        send_ids = list(conn.scalars(select(sends.c.id)))
    assert send_ids
    personal = [urls.recipient_token(signer, s) for s in send_ids]
    server = live_server(site)
    base_url = site.settings["base_url"]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/archive/members/fr")
        assert page.status_code == 200 and '<html lang="fr">' in page.text
        assert "Numéros précédents" in page.text and "Suivre ces archives (flux Atom)" in page.text
        views = re.findall(r'<li><a href="([^"]+)">', page.text)
        assert views == [urls.view_url(base_url, signer, o, "fr") for o in (second, first)]  # newest first
        assert "10 mai 2021" in page.text and "3 mai 2021" in page.text  # dates in French
        assert 'type="application/atom+xml"' in page.text
        feed = client.get("/archive/members/fr.xml")
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
        for body in (page.text, feed.text):
            assert not any(token in body for token in personal)
            assert not re.search(r"/(u|p|o|c)/[A-Za-z0-9_.-]{8,}", body.replace(base_url + "/v/", ""))
        root = _check_rfc4287(feed.content)
        assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
        parsed = feedparser.parse(feed.content)
        assert parsed.bozo == 0 and parsed.version == "atom10"
        assert [e.link for e in parsed.entries] == views
        assert parsed.entries[0].published_parsed[:3] == (2021, 5, 10)
        assert all(e.title for e in parsed.entries)
        # Each issue opens as its anonymous copy.
        copy = client.get(views[0].replace(base_url, ""))
        assert copy.status_code == 200 and not any(token in copy.text for token in personal)
        # Every language has its own page; unknown lists and languages are not found.
        assert client.get("/archive/members/ru").status_code == 200
        assert "Предыдущие выпуски" in client.get("/archive/members/ru").text
        for path in (
            "/archive/nope/fr",
            "/archive/members/xx",
            "/archive/members/xx.xml",
            "/archive/nope/en.xml",
        ):
            assert client.get(path).status_code == 404, path
        empty = client.get("/archive/key-populations/en")
        assert empty.status_code == 200 and 'id="empty"' in empty.text
    assert urls.view_url(base_url, signer, not_archived, "fr") not in page.text


def test_archived_digests_link_their_archive_from_the_footer(site: Site) -> None:
    from newsletter.render.assemble import prepare_occurrence

    at = datetime(2021, 5, 3, 8, tzinfo=UTC)
    schedules = load_schedules(site)
    digest = create_adhoc(site.store, schedules, "weekly-digest", now=at)
    html = prepare_occurrence(site, schedules, digest, "es", at).html
    assert f'href="{urls.archive_url(site.settings["base_url"], "members", "es")}"' in html
    assert "Números anteriores" in html
