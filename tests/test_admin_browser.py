"""The dashboard in headless Chromium: log in, overview, campaign figures and charts, CSV, compare,
schedule (pause, resume), preview in every language, subscribers. Screenshots go to artifacts/admin/."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import select

from newsletter.report.rollup import SIGN_ON
from newsletter.store.tables import occurrences
from tests.support.report import AS_OF, PASSWORD, AdminSite, screenshot
from tests.support.track import LiveServer

AT = AS_OF.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def page(browser: Any, admin_server: LiveServer) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.base = admin_server.url  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, f"errors in the browser console: {errors}"


def _login(page: Any, email: str, target: str = "/admin/") -> None:
    page.goto(page.base + target)
    assert "/admin/login" in page.url
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target.split('?')[0]}*")


def _chart_total(page: Any, canvas_id: str, dataset: int) -> float:
    return float(
        page.evaluate(
            "([id, i]) => Chart.getChart(document.getElementById(id)).data.datasets[i].data"
            ".reduce((a, b) => a + b, 0)",
            [canvas_id, dataset],
        )
    )


def _cell(page: Any, language: str, column: str) -> int:
    text = page.locator(f'#figures-table tr[data-language="{language}"] td[data-col="{column}"]').inner_text()
    return int(text.replace("\u202f", "").replace(",", ""))


def test_overview_campaign_csv_and_compare(admin_site: AdminSite, page: Any) -> None:
    seeded = admin_site.seeded
    _login(page, admin_site.staff, f"/admin/?at={AT}")
    assert page.locator("#plan table tbody tr").count() > 0  # the example site's spring 2021 plan
    assert "weekly-digest" in page.locator("#plan").inner_text()
    assert "missed" in page.locator("#attention").inner_text()  # the digest of 29 March was missed
    recent = page.locator("#recent").inner_text()
    assert seeded.campaign in recent
    screenshot(page, "overview")

    page.click(f"#recent a[href='/admin/campaigns/{seeded.occurrence_id}']")
    page.wait_for_selector("canvas#chart-timeline[data-drawn='1']")
    page.wait_for_selector("canvas#chart-languages[data-drawn='1']")
    expected = {
        "sent": seeded.sent(),
        "delivered": seeded.unique("delivered"),
        "bounced": seeded.unique("bounce"),
        "opens": seeded.unique("open", human=True),
        "opens_all": seeded.unique("open"),
        "clicks": seeded.unique("click", human=True),
        "clicks_raw": seeded.raw("click"),
        "sign_on": seeded.unique("click", human=True, label=SIGN_ON),
        "conversions": seeded.unique("conversion"),
        "unsubscribes": seeded.unique("unsubscribe"),
        "spam_reports": seeded.unique("spamreport"),
    }
    for column, value in expected.items():
        assert _cell(page, "all", column) == value, column
    for lang in admin_site.site.languages:
        assert _cell(page, lang, "sign_on") == seeded.unique(
            "click", human=True, label=SIGN_ON, language=lang
        )
        assert _cell(page, lang, "sent") == seeded.sent(lang)
    # The charts hold the same numbers as the table: opens per hour add up to the unique opens ...
    assert _chart_total(page, "chart-timeline", 0) == expected["opens"]
    assert _chart_total(page, "chart-timeline", 2) == expected["clicks"]
    # ... and the language bars' sign-on series to the sign-on click-throughs.
    assert _chart_total(page, "chart-languages", 2) == expected["sign_on"] > 0
    assert page.locator("#links-table tr.sign-on").count() == len(admin_site.site.languages)
    screenshot(page, "campaign")

    with page.expect_download() as info:
        page.click("a[href$='/figures.csv']")
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
    total = next(r for r in rows if r["scope"] == "total")
    assert int(total["sign_on"]) == expected["sign_on"] and int(total["opens"]) == expected["opens"]
    assert {r["language"] for r in rows if r["scope"] == "language"} == set(admin_site.site.languages)
    with page.expect_download() as info:
        page.click("a[href$='/clicks.csv']")
    clicks = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
    assert len(clicks) == expected["clicks_raw"]
    assert sum(1 for c in clicks if c["label"] == SIGN_ON and c["human"] == "yes") >= expected["sign_on"]

    page.click("nav a[href='/admin/compare']")
    page.wait_for_selector("canvas#chart-compare[data-drawn='1']")
    page.wait_for_selector("canvas#chart-daily[data-drawn='1']")
    # Both campaigns are in the comparison; the bars of the one we seeded add up to its figure.
    assert page.locator("#compare-table tbody tr").count() == 2
    index = int(
        page.evaluate(
            "id => Chart.getChart(document.getElementById('chart-compare')).data.labels"
            ".findIndex(l => l[0] === id)",
            seeded.campaign,
        )
    )
    bars = page.evaluate(
        "i => Chart.getChart(document.getElementById('chart-compare')).data.datasets.map(d => d.data[i])",
        index,
    )
    assert sum(bars) == expected["sign_on"]
    screenshot(page, "compare")


def _status(admin: AdminSite, key: str) -> str:
    with admin.site.store.read() as conn:
        return str(conn.scalar(select(occurrences.c.status).where(occurrences.c.key == key)))


def test_schedule_pause_and_resume(admin_site: AdminSite, page: Any) -> None:
    key = "webinar-april-14d/webinar-april/fr"
    assert _status(admin_site, key) == "scheduled"
    _login(page, admin_site.staff, f"/admin/schedule?at={AT}")
    row = page.locator(f"li[data-key='{key}']")
    assert "session" in page.locator("#timeline").inner_text()  # events and sessions on the timeline
    row.locator("button[data-action=pause]").click()
    page.wait_for_selector("text=Done: paused.")
    assert _status(admin_site, key) == "paused"
    assert "paused" in page.locator(f"li[data-key='{key}']").inner_text()
    screenshot(page, "schedule")
    page.locator(f"li[data-key='{key}'] button[data-action=resume]").click()
    page.wait_for_selector("text=Done: resumed.")
    assert _status(admin_site, key) == "scheduled"
    # A test copy in Portuguese to the logged-in person, through the site's transport (the outbox here).
    page.select_option("#test-send select[name=campaign]", "webinar-april-14d")
    page.select_option("#test-send select[name=language]", "pt")
    page.click("#test-send button")
    page.wait_for_selector("text=Test copy of webinar-april-14d/pt sent to staff@example.org.")
    sent = [p.read_text(errors="replace") for p in admin_site.site.outbox_dir.rglob("*.eml")]
    assert len(sent) == 1 and "staff@example.org" in sent[0] and "Content-Language: pt" in sent[0]


def test_preview_every_language(admin_site: AdminSite, page: Any) -> None:
    _login(page, admin_site.staff, f"/admin/preview?campaign=webinar-april-14d&at={AT}")
    for lang in admin_site.site.languages:
        section = page.locator(f"#preview-{lang}")
        assert section.locator(".error").count() == 0, section.inner_text()
        frames = section.locator("iframe")
        assert frames.count() == 2
        assert frames.nth(0).get_attribute("sandbox") == ""
        width = frames.nth(0).evaluate("f => f.getBoundingClientRect().width")
        assert 370 <= width <= 380
        frames.nth(1).scroll_into_view_if_needed()
        body = frames.nth(1).content_frame.locator("body")
        assert len(body.inner_text()) > 100
        assert "webinar" in section.locator("pre.text-version").text_content().lower() or lang != "en"
    page.set_viewport_size({"width": 1360, "height": 1500})
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#preview-en iframe.desktop").content_frame.locator("body").wait_for()
    screenshot(page, "preview", full_page=False)


def test_subscribers_search_and_history(admin_site: AdminSite, page: Any) -> None:
    _login(page, admin_site.staff, "/admin/subscribers")
    assert page.locator("#counts tr[data-list=members]").count() == 1
    page.fill("input[name=email]", "person3@example.org")
    page.click("#search button")
    page.wait_for_selector("#person")
    person = page.locator("#person").inner_text()
    assert "person3@example.org" in person and "members" in person
    screenshot(page, "subscribers")
    page.click("#person button:has-text('Unsubscribe from everything')")
    page.wait_for_selector("text=Done: unsubscribed.")
    assert "unsubscribed" in page.locator("#person").inner_text()
    assert "suppressed" in page.locator("#person h2").inner_text()
    page.click("#person button:has-text('Forget this person')")
    page.wait_for_selector("text=Done: forgotten.")
    page.fill("input[name=email]", "person3@example.org")
    page.click("#search button")
    page.wait_for_selector("text=No subscriber with the address person3@example.org.")
