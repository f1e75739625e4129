"""View in browser / archive: a stable public URL per occurrence and language, without personal data."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from newsletter import urls
from newsletter.site import Site
from newsletter.store.tables import events
from newsletter.tokens import Signer
from tests.support.render import add_occurrence

HUMAN = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120"}


def test_archive_copy_has_no_personal_data_and_its_links_count_for_nobody(
    site: Site, live_server: Any
) -> None:
    occurrence = add_occurrence(site, "webinar-april-1d", event_id="webinar-april", session="fr")
    signer = Signer(site.settings["secret_key"])
    server = live_server(site)
    with httpx.Client(headers=HUMAN) as client:
        page = client.get(urls.view_url(server.url, signer, occurrence, "fr"))
        assert page.status_code == 200
        assert "123 Example Street" in page.text and "%%" not in page.text
        assert "(UTC)" in page.text or "UTC" in page.text  # times for nobody's timezone
        assert client.get(urls.view_url(server.url, signer, occurrence, "fr") + "x").status_code == 404
        assert client.get(urls.view_url(server.url, signer, occurrence + 99, "fr")).status_code == 404
        clicks = re.findall(r'href="http://127\.0\.0\.1:8000(/c/[^"]+)"', page.text)
        assert clicks
        answer = client.get(server.url + clicks[0])
        assert answer.status_code == 302
    server.stop()
    with site.store.read() as conn:
        (row,) = conn.execute(select(events)).all()
    assert (row.kind, row.send_id, row.subscriber_id, row.occurrence_id) == ("click", None, None, occurrence)
