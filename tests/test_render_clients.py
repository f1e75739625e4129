"""Every template in every language as email clients, screen readers and spam filters see it.

- doiuse-email (caniemail's data): no feature Gmail (web and mobile), Outlook for Windows and Apple
  Mail lack, unless it is on ALLOWED with why the fallback is fine;
- axe-core in headless Chromium at 375 and 800 px: no violation (contrast, link text, layout tables,
  image alt, headings);
- SpamAssassin (local rules only, no network): no HTML rule scores, HTML_FONT_LOW_CONTRAST above all.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from newsletter.audience.lists import sync_lists
from newsletter.render.environment import template_names
from newsletter.render.message import Recipient
from newsletter.render.prepare import prepare, sample_context
from newsletter.render.preview import sample_recipient
from newsletter.site import Site
from tests.conftest import copy_site
from tests.support.clients import axe_script, doiuse_email_dir, spamassassin
from tests.support.track import CHROMIUM, CHROMIUM_ARGS

NOW = datetime(2021, 4, 14, 9, tzinfo=UTC)
LANGUAGES = ("en", "fr", "es", "ru", "pt")
# Gmail (webmail, iOS, Android, and its mobile webmail for non-Google accounts), Outlook for Windows and
# Windows Mail, Apple Mail. Outlook on the web ("outlook-com" in caniemail) is not in doiuse-email
# 0.4.1's client list, so it cannot be asked for.
CLIENTS = "gmail.*,outlook.windows,outlook.windows-mail,apple-mail.*"
# Features some of those clients lack, and why each fallback is fine. Most come from MJML's own output.
ALLOWED = {
    # MJML's <style> block (resets, `#outlook a`, `.mj-column-per-*` in @media): Gmail's mobile webmail
    # drops <style>, Outlook ignores parts of it; every style a layout needs is also inlined.
    "Type selector": "MJML's resets; inlined styles stand",
    "Class selector": "MJML's column classes and our link colours; inlined styles stand",
    "ID selector": "MJML's `#outlook a` reset, for Outlook only",
    "Descendant combinator": "our `.item-title a` colour; links keep the default colour",
    "Chaining selectors": "MJML's Outlook-only rules",
    "@media": "MJML's responsive columns; without it the fluid 600 px column shows",
    "word-break": "MJML's column cells; long words overflow a little in Windows Mail",
    "border-radius": "button corners are square in Outlook",
    "outline": "MJML's image reset",
    "role attribute": "role=presentation for screen readers; nothing visible",
    "aria-label attribute": "MJML's article label for screen readers; nothing visible",
    "target attribute": "Gmail opens links in a new tab anyway",
    # The hidden preheader: each client that ignores one of these honours another (display:none,
    # max-height:0 with overflow:hidden, mso-hide:all for Outlook).
    "display:none": "preheader: hidden by max-height and overflow instead",
    "opacity": "preheader: hidden by display:none and mso-hide instead",
    "overflow": "preheader: hidden by display:none and mso-hide instead",
}
ERROR = re.compile(r"^`(?P<feature>.+)` is not supported by `(?P<client>[^`]+)`")
# Page-level landmark rules do not apply: a message is shown inside the client's own page, which has
# the landmarks; MJML marks the message itself as an article (role="article", its subject as label).
AXE_OFF = ("landmark-one-main", "region")
WIDTHS = (375, 800)
SAMPLE_TEXTS = {"subject": "Sign the declaration", "preheader": "Add your organisation before 31 May."}


@pytest.fixture(scope="module")
def rendered() -> Iterator[dict[tuple[str, str], Any]]:
    """(template, language) -> the prepared message, on a copy of the example site."""
    with tempfile.TemporaryDirectory() as tmp:
        site = Site.load(
            copy_site(Path(tmp) / "site"),
            environ={
                "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp}/clients.db",
                "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789",
            },
        )
        sync_lists(site)
        yield {
            (template, language): prepare(
                site,
                template=template,
                language=language,
                context=sample_context(site, language, NOW),
                campaign_id="clients",
                now=NOW,
                sender=("HLM 2021 Civil Society Hub", "hub@example.org"),
                postal_address="123 Example Street\nNew York, NY 10017",
                list_slug="members",
                # A composed message takes its subject and preheader from its campaign; give it some.
                **(SAMPLE_TEXTS if template == "message" else {}),
            )
            for template in template_names(site.templates_dir)
            for language in LANGUAGES
        }
        site.close()


def _html(rendered: dict[tuple[str, str], Any]) -> dict[tuple[str, str], str]:
    return {k: p.personalise(p.html, sample_recipient(k[1])) for k, p in rendered.items()}


def test_every_template_is_supported_by_the_main_email_clients(rendered: Any, tmp_path: Path) -> None:
    files = {}
    for (template, language), html in _html(rendered).items():
        path = tmp_path / f"{template}.{language}.html"
        path.write_text(html, encoding="utf-8")
        files[str(path)] = f"{template}.{language}"
    assert len(files) == len(LANGUAGES) * len({t for t, _ in rendered}) >= 25
    script = Path(__file__).parent / "support" / "js" / "doiuse.mjs"
    answer = subprocess.run(
        ["node", str(script), str(doiuse_email_dir()), CLIENTS, *files],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    unsupported: dict[str, set[str]] = {}
    for path, result in json.loads(answer.stdout).items():
        for error in result.get("errors", []):
            found = ERROR.match(error)
            assert found, error
            if found["feature"] not in ALLOWED:
                unsupported.setdefault(f"{found['feature']} ({found['client']})", set()).add(files[path])
    assert not unsupported, unsupported


def test_every_template_passes_axe_at_phone_and_desktop_widths(rendered: Any) -> None:
    axe = axe_script().read_text(encoding="utf-8")
    violations: dict[str, set[str]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTHS[0], "height": 800})
        page.route("**/*", lambda route: route.abort())  # the tracking pixel stays here
        try:
            for (template, language), html in _html(rendered).items():
                page.set_content(html, wait_until="load")
                page.add_script_tag(content=axe)
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 800})
                    found = page.evaluate(
                        """async (off) => {
                          const rules = Object.fromEntries(off.map((id) => [id, {enabled: false}]));
                          const result = await axe.run(document, {resultTypes: ['violations'], rules});
                          return result.violations.map((v) => `${v.id}: ${v.nodes[0].html.slice(0, 120)}`);
                        }""",
                        list(AXE_OFF),
                    )
                    for violation in found:
                        violations.setdefault(violation, set()).add(f"{template}.{language}@{width}")
        finally:
            browser.close()
    assert not violations, violations


def test_no_message_scores_spamassassins_html_rules(rendered: Any, tmp_path: Path) -> None:
    reader = Recipient(41, "maria@example.org", "Maria Santos", "en")
    command = [spamassassin(), "--local", "--test-mode", "--prefspath", str(tmp_path / "user_prefs")]
    runs = {
        template: subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        for (template, language) in rendered
        if language == "en"
    }
    scored: dict[str, list[str]] = {}
    for template, run in runs.items():
        message = rendered[(template, "en")].mime(reader).decode("ascii")
        report, _ = run.communicate(message, timeout=120)
        rules = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", report, re.M)
        assert rules, report  # the report was read
        html = [name for points, name in rules if name.startswith("HTML_") and float(points) > 0]
        if html:
            scored[template] = html
    assert not scored, scored
