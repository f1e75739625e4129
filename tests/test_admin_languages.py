"""The dashboard in its five languages, in headless Chromium: each page in each language shows no English
text a catalog translates, dates and numbers in that locale; the user's choice is stored; and a template
string without a translation fails the catalog check (new templates are covered without registering)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from newsletter.store.tables import users
from newsletter.web import catalog
from newsletter.web.i18n import translations
from tests.support.report import AS_OF, PASSWORD, AdminSite
from tests.support.track import LiveServer

AT = AS_OF.strftime("%Y-%m-%dT%H:%M")
LOCALES = {"en": "en-GB", "fr": "fr-FR", "es": "es-ES", "ru": "ru-RU", "pt": "pt-BR"}
MONTHS = {"en": "Mar", "fr": "mars", "es": "mar", "ru": "мар.", "pt": "mar."}  # SENT_AT: March 2021


def test_every_web_string_is_translated_in_every_language() -> None:
    template = catalog.extract()
    assert len(template) > 150  # the public pages and the whole dashboard
    for language in catalog.LANGUAGES:
        gaps = catalog.gaps(language, template)
        assert gaps.missing == [], f"{catalog.po_path(language)} lacks: {gaps.missing}"
        assert gaps.placeholders == [], (
            f"{catalog.po_path(language)}: placeholders differ in {gaps.placeholders}"
        )


def test_a_new_template_string_without_translation_fails_the_check(tmp_path: Path) -> None:
    root = tmp_path / "web"
    shutil.copytree(catalog.WEB_DIR / "templates", root / "templates")
    (root / "templates" / "admin" / "composer.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1>{{ _("Compose a campaign") }}</h1>{% endblock %}'
    )
    (root / "handler.py").write_text('def title(_):\n    return _("Campaign saved")\n')
    template = catalog.extract(root=root)
    for language in catalog.LANGUAGES:
        assert {"Compose a campaign", "Campaign saved"} <= set(catalog.gaps(language, template).missing)


def _english_fragments(language: str) -> list[str]:
    """Literal pieces (12+ characters) of each msgid this language translates differently."""
    with catalog.po_path(language).open("rb") as fh:
        po = read_po(fh, locale=language)
    found = []
    for message in po:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        text = message.string if isinstance(message.string, str) else message.string[0]
        for piece in re.split(r"%\(\w+\)[sd]", msgid):
            piece = piece.strip(" .,:;·—()")
            if len(piece) >= 12 and piece not in text:
                found.append(piece)
    return found


PAGES = (
    "/admin/?at={at}",
    "/admin/campaigns/{occ}",
    "/admin/campaign/sign-on-push",
    "/admin/compare",
    "/admin/schedule?at={at}",
    "/admin/preview?campaign=webinar-april-14d",
    "/admin/subscribers?email=person3@example.org",
    "/admin/audit",
    "/admin/compose",
    "/admin/compose/new",
    "/admin/compose/inputs-call",
)


def _composed_draft(admin_site: AdminSite) -> None:
    """A composed campaign in two languages, so the composer's page of an existing campaign is visited."""
    from newsletter.schedule.compose import Form
    from newsletter.schedule.config import site_lists
    from newsletter.web.admin import composing

    site = admin_site.site
    if composing.load(site, "inputs-call") is not None:
        return
    link = '[{}](https://hub.example.org/in "declaration-inputs")'
    form = Form(
        id="inputs-call",
        lists=site_lists(site)[:1],
        languages=["en", "fr"],
        source="en",
        trigger="at",
        at="2021-05-03T09:00",
        timezone="Europe/Paris",
        texts={
            "en": {
                "subject": "Your inputs",
                "preheader": "",
                "body": "Send us " + link.format("your inputs"),
            },
            "fr": {"subject": "Vos contributions", "preheader": "", "body": link.format("vos contributions")},
        },
    )
    saved = composing.save(site, form, 0, "draft", admin_site.staff, AS_OF, True)
    assert not isinstance(saved, dict), saved


@pytest.mark.parametrize("language", list(LOCALES))
def test_dashboard_pages_in_each_language(
    admin_site: AdminSite, admin_server: LiveServer, browser: Any, language: str
) -> None:
    from newsletter import audit

    audit.record(admin_site.site.store, admin_site.staff, "pause", "hlm-7d/hlm-2021", {"occurrence": 1})
    _composed_draft(admin_site)
    context = browser.new_context(locale=LOCALES[language], viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    english = _english_fragments(language) if language != "en" else []
    _ = translations(language).gettext
    try:
        page.goto(admin_server.url + "/admin/login")
        assert page.get_attribute("html", "lang") == language
        assert page.inner_text("h1") == _("Log in")
        page.fill("input[name=email]", admin_site.staff)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/")
        for path in PAGES:
            response = page.goto(admin_server.url + path.format(at=AT, occ=admin_site.seeded.occurrence_id))
            assert response is not None and response.ok, path
            assert page.get_attribute("html", "lang") == language, path
            text = page.inner_text("body")
            left = [piece for piece in english if piece in text]
            assert not left, f"{path} in {language} shows untranslated text: {left}"
            assert _("Overview") in page.inner_text("header nav")
        # Dates and numbers in the locale: the campaign page's date and its thousands.
        page.goto(admin_server.url + f"/admin/campaigns/{admin_site.seeded.occurrence_id}")
        assert MONTHS[language] in page.inner_text("h1")
        rate = page.inner_text("[data-figure=click_rate] .value")
        assert re.fullmatch(r"\d+\.\d\s?%" if language == "en" else r"\d+,\d\s?%", rate), rate
        page.wait_for_selector("canvas#chart-timeline[data-drawn='1']")
        legend = page.evaluate(
            "Chart.getChart(document.getElementById('chart-timeline')).data.datasets[0].label"
        )
        assert legend == _("Opens (human)")
    finally:
        context.close()
    assert not errors, errors


def test_the_chosen_language_is_stored_on_the_user(
    admin_site: AdminSite, admin_server: LiveServer, browser: Any
) -> None:
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(admin_server.url + "/admin/login")
        page.fill("input[name=email]", admin_site.organiser)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/")
        assert page.get_attribute("html", "lang") == "fr"
        page.goto(admin_server.url + "/admin/compare")
        page.select_option("#language", "ru")
        page.click("#language-form button")
        page.wait_for_url("**/admin/compare")
        assert page.get_attribute("html", "lang") == "ru" and "Сравнение" in page.inner_text("header nav")
    finally:
        context.close()
    with admin_site.site.store.read() as conn:
        stored = conn.scalar(select(users.c.language).where(users.c.email == admin_site.organiser))
    assert stored == "ru"
