"""Parsing feed bytes into items: the example feeds, encodings, broken XML, dedupe keys, languages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.feeds.parse import normalize_language, parse_feed
from tests.support.feeds import atom, rss

FEEDS = Path(__file__).resolve().parent.parent / "feeds"
LANGS = ["en", "fr", "es", "ru", "pt"]


def parse(body: bytes, headers=None, url="https://hub.example.org/feed/", **kw):
    return parse_feed(body, headers or {}, url=url, languages=LANGS, default_language="en", **kw)


def test_wordpress_rss_example():
    parsed = parse((FEEDS / "hub-en.xml").read_bytes(), url="feeds/hub-en.xml")
    assert parsed.error is None and parsed.warning is None
    assert len(parsed.items) == 9
    first = parsed.items[0]
    assert first.title == "Five years on: how the 2021 Political Declaration targets are tracking"
    assert first.guid == "https://hlm2021-hub.example.org/?p=2417"
    assert first.guid_key.startswith("guid:")
    assert first.author == "Hub editorial team"
    assert first.categories == ("Analysis", "Political Declaration")
    assert first.published_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert first.language == "en"
    assert first.summary_html.startswith("Ahead of World AIDS Day")  # the description, not content
    assert "<h3>What we looked at</h3>" in first.content_html  # content:encoded
    assert first.image_url == "https://hlm2021-hub.example.org/wp-content/uploads/2026/11/targets-chart.png"
    webinar = next(i for i in parsed.items if "27 May" in i.title)
    assert (
        webinar.image_url == "https://hlm2021-hub.example.org/wp-content/uploads/2021/05/webinar-banner.jpg"
    )
    adopted = next(i for i in parsed.items if "adopted" in i.title)
    # A root-relative link in a local file is resolved against the item's own link.
    assert 'href="https://hlm2021-hub.example.org/resources/political-declaration-reading-guide/"' in (
        adopted.content_html
    )


def test_atom_example_with_xml_base_and_language_from_the_feed():
    parsed = parse((FEEDS / "hub-es.atom").read_bytes(), url="feeds/hub-es.atom")
    assert len(parsed.items) == 6
    first = parsed.items[0]
    assert first.link == "https://hlm2021-hub.example.org/es/2026/11/22/cinco-anos-despues/"
    assert first.language == "es"
    assert (
        'href="https://hlm2021-hub.example.org/es/2026/11/22/cinco-anos-despues/informe.pdf"'
        in first.content_html
    )
    assert (
        first.image_url
        == "https://hlm2021-hub.example.org/es/2026/11/22/cinco-anos-despues/grafico-metas.png"
    )
    plain = next(i for i in parsed.items if "Borrador cero" in i.title)
    assert plain.summary_html.startswith("<p>Australia y Namibia")  # type="text", escaped into a paragraph
    pt = parse((FEEDS / "hub-pt.atom").read_bytes(), url="feeds/hub-pt.atom")
    assert {i.language for i in pt.items} == {"pt"}  # xml:lang="pt-BR" in a site that offers "pt"
    assert pt.items[0].image_url.endswith("/webinario-pt.jpg")  # media:thumbnail
    assert "<strong>165 votos a 4</strong>" in pt.items[1].content_html  # xhtml content


def test_declared_language_wins_and_category_filter_keeps_matching_items():
    parsed = parse(
        (FEEDS / "hub-fr.xml").read_bytes(), declared_language="fr", categories=["webinaires", "Nothing"]
    )
    assert [i.categories for i in parsed.items] == [("Webinaires",), ("Webinaires",)]
    assert parsed.filtered == 4
    assert {i.language for i in parsed.items} == {"fr"}


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("fr-FR", "fr"), ("FR", "fr"), ("pt_BR", "pt"), ("ru-RU", "ru"), ("", "en"), ("de-DE", "de")],
)
def test_normalize_language(tag, expected):
    assert normalize_language(tag, LANGS, "en") == expected


def test_normalize_language_prefers_the_exact_regional_code():
    assert normalize_language("pt-br", ["en", "pt", "pt-BR"], "en") == "pt-BR"
    assert normalize_language("pt", ["en", "pt-BR"], "en") == "pt-BR"


def test_dedupe_keys_guid_then_link_then_title_and_content():
    doc = rss(
        [
            {"guid": "a", "title": "A", "link": "https://hub.example.org/a"},
            {"title": "B", "link": "https://hub.example.org/b"},
            {"title": "C", "description": "<p>c</p>"},
            {"guid": "a", "title": "A again"},  # repeated id in one document: the first one counts
        ]
    ).encode()
    parsed = parse(doc)
    keys = [i.guid_key.split(":")[0] for i in parsed.items]
    assert keys == ["guid", "link", "hash"]
    assert parsed.duplicates == 1
    again = parse(doc)
    assert [i.guid_key for i in again.items] == [i.guid_key for i in parsed.items]
    assert [i.content_hash for i in again.items] == [i.content_hash for i in parsed.items]


def test_content_hash_follows_the_content():
    one = parse(rss([{"guid": "x", "title": "T", "content": "<p>one</p>"}]).encode()).items[0]
    two = parse(rss([{"guid": "x", "title": "T", "content": "<p>two</p>"}]).encode()).items[0]
    assert one.guid_key == two.guid_key and one.content_hash != two.content_hash


def test_windows_1251_and_utf16_bodies():
    text = (FEEDS / "hub-ru.xml").read_text(encoding="utf-8")
    cp1251 = text.replace('encoding="UTF-8"', 'encoding="windows-1251"').encode("cp1251")
    utf16 = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    for body, headers in [
        (cp1251, {"content-type": "application/rss+xml; charset=windows-1251"}),
        (cp1251, {"content-type": "application/rss+xml"}),  # the XML declaration tells
        (utf16, {"content-type": "application/rss+xml"}),
    ]:
        parsed = parse(body, headers)
        assert parsed.error is None and parsed.warning is None
        assert parsed.items[0].title == "Пять лет спустя: вебинар для Восточной Европы и Центральной Азии"
        assert parsed.items[0].language == "ru"


def test_truncated_xml_keeps_what_parsed_with_a_warning():
    body = (FEEDS / "hub-en.xml").read_bytes()
    parsed = parse(body[: len(body) // 2])
    assert parsed.error is None
    assert parsed.warning and "not a well-formed feed" in parsed.warning
    assert 1 <= len(parsed.items) < 9
    assert parsed.items[0].title.startswith("Five years on")


def test_wrong_content_type_still_parses_with_a_warning():
    parsed = parse((FEEDS / "hub-en.xml").read_bytes(), {"content-type": "text/html"})
    assert len(parsed.items) == 9 and parsed.warning


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body><h1>Maintenance</h1></body></html>", "not a well-formed feed"),
        (b"", "no RSS or Atom feed found"),
        (b"just some text", "not a well-formed feed"),
    ],
)
def test_documents_without_items_are_errors(body, message):
    parsed = parse(body, {"content-type": "text/html"})
    assert parsed.items == [] and parsed.error and message in parsed.error


def test_empty_but_valid_feed_is_not_an_error():
    parsed = parse(rss([]).encode())
    assert parsed.items == [] and parsed.error is None


def test_entry_language_beats_feed_language():
    doc = atom(
        [
            {"id": "1", "title": "Français", "lang": "fr-CA", "summary": "<p>Bonjour</p>"},
            {"id": "2", "title": "English", "summary": "<p>Hello</p>"},
        ],
        lang="en-GB",
    )
    parsed = parse(doc.encode(), {"content-type": "application/atom+xml"})
    assert [i.language for i in parsed.items] == ["fr", "en"]


def test_summary_falls_back_to_an_excerpt_of_the_content():
    long_text = "Le texte de la déclaration " * 30
    parsed = parse(rss([{"guid": "1", "title": "T", "content": f"<p>{long_text}</p>"}]).encode())
    summary = parsed.items[0].summary_html
    assert summary.startswith("<p>Le texte") and summary.endswith("…</p>") and len(summary) < 300
