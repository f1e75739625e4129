"""Rendering one (campaign, language): languages and fallback, RTL, local times, links, hostile items."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter.campaigns import Event
from newsletter.errors import RenderError
from newsletter.render.assemble import prepare_occurrence, tracked
from newsletter.render.content import event_view, item_view
from newsletter.render.message import Recipient
from newsletter.render.prepare import prepare, resolve_language, sample_context
from newsletter.schedule.load import load_schedules
from newsletter.store.tables import links
from tests.support.render import add_items, add_occurrence

CAMPAIGN = "test-campaign"


def render(site, template="digest", language="en", now=datetime(2021, 4, 14, 9, tzinfo=UTC), **kw):
    context = kw.pop("context", None) or sample_context(site, language, now)
    return prepare(
        site, template=template, language=language, context=context, campaign_id=CAMPAIGN, now=now, **kw
    )


def test_resolve_language_follows_the_fallback_chain(render_site):
    assert resolve_language(render_site, "pt-BR", ["en", "fr", "pt"]) == "pt"
    assert resolve_language(render_site, "pt-BR", ["en", "fr"]) == "en"
    assert resolve_language(render_site, "fr", ["en", "fr"]) == "fr"
    assert resolve_language(render_site, "fr_FR", ["ru", "en"]) == "en"  # fr-FR -> fr -> en (the default)
    assert (
        resolve_language(render_site, "de", ["ru", "es"]) == "ru"
    )  # nothing in the chain: the campaign's first


def test_pt_br_strings_fall_back_to_pt_then_en(make_site):
    # pt-BR has its own catalog for one string only; the rest comes from pt, then en.
    site = make_site(languages=("pt-BR",))
    po = site.templates_dir / "locale" / "pt_BR" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Read more"\nmsgstr "Leia mais, galera"\n',
        encoding="utf-8",
    )
    prepared = render(site, language="pt-BR")
    assert "Leia mais, galera" in prepared.html  # pt-BR's own
    assert "Cancelar inscrição" in prepared.html  # from pt
    assert prepared.missing and "Read more" not in prepared.missing
    with pytest.raises(RenderError) as err:
        render(site, language="pt-BR", missing_translation="block")
    message = str(err.value)
    assert "'pt-BR'" in message and "pt_BR/LC_MESSAGES/messages.po" in message
    assert "'%(num)d new update from the HLM 2021 hub'" in message  # names the strings to translate


def test_block_passes_when_the_catalog_is_complete(render_site):
    prepared = render(render_site, language="ru", missing_translation="block")
    assert prepared.missing == []
    assert "Отписаться" in prepared.html


def test_rtl_language_sets_dir_and_lang(make_site):
    site = make_site(languages=("ar",), arabic=True)
    prepared = render(site, template="event_reminder", language="ar")
    assert '<html lang="ar" dir="rtl"' in prepared.html
    assert "إلغاء الاشتراك" in prepared.html  # from the Arabic test catalog
    assert "text-align:right" in prepared.html
    assert "Times are shown in your time zone." in prepared.html  # untranslated: English fallback
    ltr = render(site, template="event_reminder", language="fr")
    assert '<html lang="fr" dir="ltr"' in ltr.html


def test_event_time_in_the_readers_timezone_and_language(render_site):
    start = datetime(2021, 4, 21, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    event = Event(
        id="w",
        kind="webinar",
        title={"en": "Webinar", "fr": "Webinaire"},
        start=start,
        timezone="America/New_York",
        url="https://hlm2021-hub.example.org/w",
    )
    context = {"event": event_view(event, ["fr", "en"])}
    prepared = render(render_site, template="event_reminder", language="fr", context=context)
    paris = Recipient(1, "a@example.org", "Zoé", "fr", timezone="Europe/Paris")
    html = prepared.personalise(prepared.html, paris)
    assert "mercredi 21 avril 2021, 16:00 (Paris)" in html
    text = prepared.personalise(prepared.text, paris, html=False)
    assert "16:00 (Paris)" in text and "Webinaire" in text
    new_york = Recipient(2, "b@example.org", "", "fr", timezone="America/New_York")
    assert "10:00 (New York)" in prepared.personalise(prepared.html, new_york)
    assert prepared.subject == "Rappel : Webinaire"


def test_hostile_item_is_escaped_and_sanitised(render_site, render_now):
    hostile = {
        "title": '<script>alert("t")</script></mj-text></mj-column>%%r%%',
        "link": "https://hlm2021-hub.example.org/x",
        "summary_html": '<p onclick="steal()">Hi <img src=x onerror=alert(1)><script>alert(2)</script>'
        '<a href="javascript:alert(3)">js</a><style>body{display:none}</style>'
        '</mj-text></mj-section><mj-raw><iframe src="https://evil.example"></iframe></mj-raw>'
        '<a href="https://ok.example/p">ok</a></p>',
        "language": "en",
    }
    context = sample_context(render_site, "en", render_now)
    context["items"] = [item_view(hostile, "en", note=False)]
    prepared = render(render_site, context=context)
    html = prepared.html
    assert "<script" not in html and "onerror" not in html and "onclick" not in html
    assert "javascript:" not in html and "<iframe" not in html and "display:none}" not in html
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;&lt;/mj-text&gt;" in html
    assert "https://ok.example/p?utm_source=newsletter" in html  # the good link survives, with UTM
    assert "%%r%%" not in html.split("Hi")[0].split("alert")[-1]  # the title cannot forge a placeholder
    assert html.count("<mj-") == 0  # the layout was not broken open


def test_feed_item_placeholder_cannot_reach_the_recipient(render_site, render_now):
    context = sample_context(render_site, "en", render_now)
    context["items"] = [item_view({"title": "Win %%r%% %%name%%", "link": "https://e.example/"}, "en", False)]
    prepared = render(render_site, context=context)
    html = prepared.personalise(prepared.html, Recipient(7, "a@example.org", "Secret Name"))
    assert "Win %\u2060%r%\u2060%" in html


def test_links_get_utm_and_labels_without_tracking(render_site):
    prepared = render(render_site)
    sign_on = [url for _id, url, label in prepared.links if label == "declaration-sign-on"]
    assert sign_on == [
        "https://hlm2021-hub.example.org/declaration/sign-on"
        "?utm_source=newsletter&utm_medium=email&utm_campaign=test-campaign-en"
    ]
    assert all(link_id is None for link_id, _, _ in prepared.links)
    assert "/c/" not in prepared.html and "/o/" not in prepared.html
    bare = render(render_site, utm=False)
    assert "utm_source" not in bare.html


@pytest.mark.postgres
def test_tracked_links_are_registered_once_per_occurrence_and_language(site, backend):
    occurrence = add_occurrence(site, "weekly-digest")
    untracked = render(site, occurrence_id=occurrence)
    with site.store.read() as conn:  # rendering writes nothing: the caller registers what it found
        assert conn.execute(select(links).where(links.c.occurrence_id == occurrence)).all() == []
    assert untracked.links and all(link_id is None for link_id, _, _ in untracked.links)
    now = datetime(2021, 4, 14, 9, tzinfo=UTC)
    first = tracked(site.store, untracked, now)
    again = tracked(site.store, render(site, occurrence_id=occurrence), now)
    assert first.links == again.links  # re-rendering reuses the ids
    with site.store.read() as conn:
        rows = conn.execute(select(links).where(links.c.occurrence_id == occurrence)).all()
    assert len(rows) == len(first.links) and {r.language for r in rows} == {"en"}
    labelled = [r for r in rows if r.label == "declaration-sign-on"]
    assert len(labelled) == 1 and "utm_campaign=test-campaign-en" in labelled[0].url
    assert 'href="http://127.0.0.1:8000/c/' in first.html and "%%r%%" in first.html
    assert "https://hlm2021-hub.example.org/declaration" not in first.html  # only tracked URLs remain
    assert "/o/%%r%%.gif" in first.html  # open pixel
    assert "/v/" in first.html  # view in browser


@pytest.mark.postgres
def test_prepare_occurrence_reads_campaign_event_and_list(site, backend, render_now):
    occurrence = add_occurrence(site, "webinar-april-1d", event_id="webinar-april", session="fr")
    prepared = prepare_occurrence(site, load_schedules(site), occurrence, "fr", render_now)
    assert prepared.occurrence_id == occurrence and prepared.campaign_id == "webinar-april-1d"
    assert prepared.from_email == "hub@hlm2021-hub.example.org"
    assert "123 Example Street" in prepared.html
    assert "La société civile et la Réunion de haut niveau 2021" in prepared.subject
    html = prepared.personalise(
        prepared.html, Recipient(1, "a@example.org", "", "fr", timezone="Europe/Paris")
    )
    assert "mercredi 21 avril 2021, 13:00 (Paris)" in html  # 11:00 Abidjan (UTC) is 13:00 in Paris
    assert "Bonjour à vous," in html  # no name: the catalog's fallback


@pytest.mark.postgres
def test_digest_uses_fallback_items_and_says_so(site, backend, render_now):
    add_items(
        site,
        [
            {"title": "English news one"},
            {"title": "English news two"},
            {"title": "Nouvelle en français", "language": "fr"},
        ],
    )
    occurrence = add_occurrence(site, "weekly-digest")
    french = prepare_occurrence(site, load_schedules(site), occurrence, "fr", render_now)
    assert "Nouvelle en français" in french.html and "English news" not in french.html
    assert "Cet article est en" not in french.html
    russian = prepare_occurrence(site, load_schedules(site), occurrence, "ru", render_now)
    assert "English news one" in russian.html and "Этот материал на языке: английский." in russian.html
    assert russian.subject == "2 новости хаба СВУ 2021"


def test_unknown_language_is_refused(render_site):
    with pytest.raises(RenderError, match=r"unknown language 'de'.*offers en, fr, es, ru, pt"):
        render(render_site, language="de")
    with pytest.raises(RenderError, match=r"unknown language 'xx-nope'"):
        render(render_site, language="xx-nope")


@pytest.mark.postgres
def test_campaign_that_blocks_on_missing_translations(site, backend, render_now):
    po = site.templates_dir / "locale" / "es" / "LC_MESSAGES" / "messages.po"
    po.write_text(
        po.read_text(encoding="utf-8").replace('msgstr "Darse de baja"', 'msgstr ""'), encoding="utf-8"
    )
    schedules = load_schedules(site)
    campaign = dataclasses.replace(schedules.campaigns["signon-3d"], missing_translation="block")
    schedules = dataclasses.replace(schedules, campaigns={**schedules.campaigns, "signon-3d": campaign})
    occurrence = add_occurrence(site, "signon-3d", event_id="declaration-deadline")
    with pytest.raises(
        RenderError,
        match=r"language 'es' lacks 1 string\(s\) in .*es/LC_MESSAGES/messages.po: "
        r"'Unsubscribe'",
    ):
        prepare_occurrence(site, schedules, occurrence, "es", render_now)
    assert prepare_occurrence(site, schedules, occurrence, "fr", render_now).language == "fr"
    with site.store.read() as conn:  # a blocked language registers no links
        assert {r.language for r in conn.execute(select(links.c.language))} == {"fr"}


def test_an_edited_catalog_is_recompiled(render_site):
    first = render(render_site, template="welcome", language="fr")
    assert "Visiter le hub" in first.html
    po = render_site.templates_dir / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    assert po.with_suffix(".mo").exists()  # compiled on first use
    po.write_text(
        po.read_text(encoding="utf-8").replace("Visiter le hub", "Découvrir le hub"), encoding="utf-8"
    )
    stat = po.with_suffix(".mo").stat()
    os.utime(po, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # newer than the .mo
    assert "Découvrir le hub" in render(render_site, template="welcome", language="fr").html
