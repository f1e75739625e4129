"""Dashboard pages as a new user first reads them: a sent occurrence's recipients, a first-hour chart."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from newsletter.schedule.sync import plan_for_site
from newsletter.store.tables import events, occurrences, sends
from tests.support.report import PASSWORD, SENT_AT, AdminSite
from tests.support.track import LiveServer
from tests.test_admin_http import login


@pytest.fixture
def client(admin_site: AdminSite, admin_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=admin_server.url, follow_redirects=False, timeout=20) as c:
        yield c


def test_a_sent_occurrence_shows_the_recipients_of_its_ledger(
    admin_site: AdminSite, client: httpx.Client
) -> None:
    at = "2021-03-25T09:00Z"  # the day after the seeded send, so it is inside the page's week back
    seeded = admin_site.seeded
    sent = next(
        s for s in plan_for_site(admin_site.site, SENT_AT, 7) if s.occurrence_id == seeded.occurrence_id
    )
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


def _first_hour_campaign(site: Any) -> int:
    """A sent occurrence whose every open and click came within 50 minutes of sending."""
    at = SENT_AT + timedelta(days=3)
    with site.store.write() as conn:
        occ = conn.execute(
            occurrences.insert().values(
                key="first-hour@test",
                campaign="first-hour",
                due_at=at,
                status="sent",
                languages=["en"],
                template="announcement",
                created_at=at,
                updated_at=at,
            )
        ).inserted_primary_key[0]
        for i in range(6):
            send = conn.execute(
                sends.insert().values(
                    occurrence_id=occ,
                    email=f"early{i}@example.org",
                    language="en",
                    status="sent",
                    created_at=at,
                    sent_at=at,
                )
            ).inserted_primary_key[0]
            common = {
                "source": "pixel",
                "occurrence_id": occ,
                "send_id": send,
                "campaign": "first-hour",
                "language": "en",
                "machine": False,
                "user_agent": "",
                "ip": "",
            }
            conn.execute(events.insert().values(kind="open", at=at + timedelta(minutes=5 + i), **common))
            if i % 2:
                conn.execute(
                    events.insert().values(
                        kind="click", at=at + timedelta(minutes=20 + i), **{**common, "source": "redirect"}
                    )
                )
    return int(occ)


def test_a_campaign_whose_hits_all_fall_in_the_first_hour_still_draws_its_chart(
    admin_site: AdminSite, admin_server: LiveServer, browser: Any
) -> None:
    occurrence_id = _first_hour_campaign(admin_site.site)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(f"{admin_server.url}/admin/campaigns/{occurrence_id}")
        page.fill("input[name=email]", admin_site.organiser)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("canvas#chart-timeline[data-drawn='1']")
        drawn = page.evaluate(
            """() => {
              const canvas = document.getElementById('chart-timeline');
              const chart = Chart.getChart(canvas);
              const a = chart.chartArea, r = window.devicePixelRatio;
              const px = canvas.getContext('2d').getImageData(a.left * r, a.top * r,
                (a.right - a.left) * r, (a.bottom - a.top) * r).data;
              // Pixels of the opens' blue (#2563eb) and the clicks' orange (#c2410c) inside the plot.
              let blue = 0, orange = 0;
              const near = (i, c) => px[i + 3] > 200
                && Math.abs(px[i] - c[0]) + Math.abs(px[i + 1] - c[1]) + Math.abs(px[i + 2] - c[2]) < 40;
              for (let i = 0; i < px.length; i += 4) {
                if (near(i, [37, 99, 235])) blue++;
                if (near(i, [194, 65, 12])) orange++;
              }
              return {points: chart.data.labels.length, blue, orange};
            }"""
        )
    finally:
        page.close()
    assert drawn["points"] == 1, drawn
    assert drawn["blue"] > 100 and drawn["orange"] > 100, drawn
