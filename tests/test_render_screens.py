"""Each template in headless Chromium at phone (375px) and desktop (1024px) widths.

Screenshots are written to artifacts/render/ (git-ignored) for people to look at; the assertions check
what a reader would notice: nothing wider than the screen, the content column at its width, the
button visible, the text direction right.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from newsletter.render.environment import template_names
from newsletter.render.prepare import prepare, sample_context
from newsletter.render.preview import sample_recipient

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "render"
NOW = datetime(2021, 4, 14, 9, tzinfo=UTC)
WIDTHS = {"phone": 375, "desktop": 1024}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield browser
        browser.close()


def shoot(chromium: Browser, html: str, name: str, width: int) -> dict:
    page = chromium.new_page(viewport={"width": width, "height": 800})
    try:
        page.route("**/*", lambda route: route.abort())  # nothing leaves the machine (tracking pixel)
        page.set_content(html, wait_until="load")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.{width}.png"), full_page=True)
        return page.evaluate(
            """() => {
              const column = document.querySelector('.mj-column-per-100');
              const button = document.querySelector('td[role="presentation"] a, a[style*="background"]');
              return {
                scroll: document.documentElement.scrollWidth,
                column: column ? column.getBoundingClientRect().width : 0,
                dir: document.documentElement.getAttribute('dir'),
                button: button ? button.getBoundingClientRect().width : -1,
                text: document.body.innerText,
              };
            }"""
        )
    finally:
        page.close()


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_template_fits_phone_and_desktop(render_site, chromium, language):
    # Every template in English; the longest one (digest) and the reminder in Russian too.
    names = template_names(render_site.templates_dir) if language == "en" else ["digest", "event_reminder"]
    for template in names:
        prepared = prepare(
            render_site,
            template=template,
            language=language,
            context=sample_context(render_site, language, NOW),
            campaign_id="screens",
            now=NOW,
            postal_address="123 Example Street\nNew York, NY 10017",
        )
        html = prepared.personalise(prepared.html, sample_recipient(language))
        for label, width in WIDTHS.items():
            seen = shoot(chromium, html, f"{template}.{language}.{label}", width)
            assert seen["scroll"] <= width, f"{template} {language} overflows at {width}px"
            assert seen["column"] == pytest.approx(min(width, 600), abs=2), (template, width, seen["column"])
            assert seen["dir"] == "ltr"
            assert "Maria Santos" in seen["text"]
            assert seen["button"] != 0


def test_rtl_template_renders_right_to_left(make_site, chromium):
    render_site = make_site(languages=("ar",), arabic=True)
    prepared = prepare(
        render_site,
        template="event_reminder",
        language="ar",
        context=sample_context(render_site, "ar", NOW),
        campaign_id="screens",
        now=NOW,
    )
    html = prepared.personalise(prepared.html, sample_recipient("ar"))
    for label, width in WIDTHS.items():
        seen = shoot(chromium, html, f"event_reminder.ar.{label}", width)
        assert seen["dir"] == "rtl" and seen["scroll"] <= width
        assert "إلغاء الاشتراك" in seen["text"]
