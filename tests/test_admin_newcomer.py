"""Dashboard pages as a new user first reads them: a sent occurrence's recipients, a first-hour chart."""

from __future__ import annotations

import re

import httpx
import pytest

from newsletter.schedule.sync import plan_for_site
from tests.support.report import SENT_AT, AdminSite
from tests.support.track import LiveServer
from tests.test_admin_http import login


@pytest.fixture
def client(admin_site: AdminSite, admin_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=admin_server.url, follow_redirects=False, timeout=20) as c:
        yield c


def test_a_sent_occurrence_shows_the_recipients_of_its_ledger(admin_site: AdminSite, client: httpx.Client) -> None:
    at = "2021-03-25T09:00Z"  # the day after the seeded send, so it is inside the page's week back
    seeded = admin_site.seeded
    sent = next(s for s in plan_for_site(admin_site.site, SENT_AT, 7) if s.occurrence_id == seeded.occurrence_id)
    assert sent.status == "sent" and sent.audience == 150
    assert sum(sent.audience_by_language.values()) == 150 and set(sent.audience_by_language) == set(
        admin_site.site.languages
    )
    assert login(client, admin_site.organiser).status_code == 303
    page = client.get("/admin/schedule", params={"at": at})
    assert page.status_code == 200
    item = re.search(r'data-key="sign-on-push@[^"]*".*?</li>', page.text, re.S)
    assert item, page.text
    assert "150 recipients" in item.group(0), item.group(0)
