"""Markdown bodies and `<lang>.md` front matter: what renders, what never reaches an email."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.campaign_content import Text, build_content, format_text, parse_text, stamp, text_hash
from newsletter.errors import SourceError
from newsletter.render.markdown import render_body

HOSTILE = re.compile(
    r"<script|javascript:|vbscript:|data:|\son\w+\s*=|<iframe|<style|<object|<svg|<form", re.I
)


def hostile(mjml: str) -> list[str]:
    """Tags (with their attributes) that could run something; text that merely reads like it is fine."""
    return [tag for tag in re.findall(r"<[^>]*>", mjml) if HOSTILE.search(tag)]


def test_paragraphs_buttons_images_and_labels() -> None:
    body = render_body(
        'Read **the draft** [here](https://hub.example.org/d "zero-draft").\n\n'
        '[Endorse the declaration](https://hub.example.org/sign "declaration-sign-on"){.button}\n\n'
        "![Logo](https://hub.example.org/logo.png)\n\n"
        "[Inputs](https://hub.example.org/in){label=declaration-inputs}"
    )
    mjml = str(body.mjml)
    assert '<mj-text><p>Read <strong>the draft</strong> <a href="https://hub.example.org/d">here</a>' in mjml
    assert '<mj-button href="https://hub.example.org/sign">Endorse the declaration</mj-button>' in mjml
    assert '<mj-image src="https://hub.example.org/logo.png" alt="Logo" />' in mjml
    assert "title=" not in mjml and "label=" not in mjml  # labels are for the dashboard only
    assert dict(body.links) == {
        "https://hub.example.org/d": "zero-draft",
        "https://hub.example.org/sign": "declaration-sign-on",
        "https://hub.example.org/in": "declaration-inputs",
    }
    assert not body.empty


def test_a_title_that_is_not_a_label_is_dropped() -> None:
    body = render_body('[x](https://a.example.org "Read more about it")')
    assert dict(body.links) == {"https://a.example.org": ""} and "Read more" not in str(body.mjml)


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1)){.button}",
        '<img src=x onerror="alert(1)">',
        "[x](https://a.example.org){onclick=alert(1)}",
        "![x](http://insecure.example.org/a.png)",
        "![x](javascript:alert(1))",
        "<iframe src=https://evil.example.org></iframe>",
        '<a href="https://evil.example.org" onmouseover="x()">raw</a>',
        "%%r%% and %%name%%",
    ],
)
def test_hostile_markdown_never_reaches_the_mjml(source: str) -> None:
    mjml = str(render_body(source).mjml)
    assert not hostile(mjml), mjml
    assert "<img" not in mjml and "<mj-image" not in mjml or "https://" in mjml
    assert "%%r%%" not in mjml and "%%name%%" not in mjml
    assert '<a href="https://evil' not in mjml  # raw HTML stays text, escaped


def test_insecure_images_are_dropped_and_empty_bodies_are_told() -> None:
    assert render_body("![x](http://insecure.example.org/a.png)").empty
    assert render_body("   \n\n   \n").empty
    assert render_body("").empty
    assert not render_body("Hello").empty


PIECES = [*"[]()<>{}!*_#.-:/ \n\"'=%&;`~|\té", "javascript", "on", "https://a.org", "script", "button"]
PIECES += ["img", "src", "href", "label", "{.button}", "![", "](", "<a ", "onerror=", "%%"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=80).map("".join) | st.text(max_size=200))
def test_any_markdown_renders_without_error_and_safely(source: str) -> None:
    body = render_body(source)
    mjml = str(body.mjml)
    assert not hostile(mjml), mjml
    for block in re.findall(r"<(/?)([a-z][a-z0-9-]*)", mjml):
        assert block[1] in {
            "mj-text",
            "mj-button",
            "mj-image",
            "p",
            "br",
            "a",
            "strong",
            "em",
            "b",
            "i",
            "s",
            "del",
            "code",
            "pre",
            "ul",
            "ol",
            "li",
            "blockquote",
            "h1",
            "h2",
            "h3",
            "h4",
            "hr",
            "img",
        }, mjml


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300)
    | st.builds(lambda a, b: f"---\n{a}\n---\n{b}", st.text(max_size=120), st.text(max_size=80))
)
def test_front_matter_parser_only_raises_located_errors(raw: str) -> None:
    try:
        text = parse_text("content/x/fr.md", raw, "fr")
    except SourceError as exc:
        assert str(exc).startswith("content/x/fr.md")
    else:
        assert text.subject and text.language == "fr"


def test_front_matter_fields_and_errors() -> None:
    text = parse_text(
        "fr.md", "---\nsubject: Bonjour\npreheader: Court\nsource: en\nsource_hash: abc\n---\n\nCorps\n", "fr"
    )
    assert (text.subject, text.preheader, text.source, text.source_hash, text.body) == (
        "Bonjour",
        "Court",
        "en",
        "abc",
        "Corps",
    )
    with pytest.raises(SourceError, match=r"fr.md:3:1: unknown field 'titel'"):
        parse_text("fr.md", "---\nsubject: x\ntitel: y\n---\n", "fr")
    with pytest.raises(SourceError, match=r"fr.md:1:1: expected front matter"):
        parse_text("fr.md", "Hello", "fr")
    with pytest.raises(SourceError, match=r"missing 'subject'"):
        parse_text("fr.md", "---\npreheader: x\n---\nbody", "fr")
    with pytest.raises(SourceError, match=r"fr.md:2:1: subject: expected text, got list"):
        parse_text("fr.md", "---\nsubject: [a, b]\n---\n", "fr")


def test_status_follows_the_source_hash_and_round_trips_through_files() -> None:
    en = Text("en", "Hello", "Pre", "Body")
    fr = stamp(Text("fr", "Bonjour", "", "Corps"), en)
    content = build_content("c", [en, fr], "en")
    assert content.statuses(["en", "fr", "es"]) == {"en": "source", "fr": "translated", "es": "missing"}
    changed = build_content("c", [Text("en", "Hello", "Pre", "Body, changed"), fr], "en")
    assert changed.status("fr") == "outdated"
    again = parse_text("fr.md", format_text(fr), "fr")
    assert again.hash == fr.hash and again.source_hash == en.hash
    assert text_hash("a", "b", "c\r\n") == text_hash("a ", "b", "c")
    # A fallback reader of es gets the source; of fr, the translation.
    assert content.pick(["es", "en"]) == en and content.pick(["fr", "en"]) == fr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(PIECES + ["\n\n", "# ", "> ", "1. ", "---\n", "```\n", "<hr>", "&amp;"]), max_size=60
    ).map("".join)
)
def test_any_markdown_goes_through_mjml_into_a_message(site_dir: Any, source: str) -> None:
    from datetime import UTC, datetime

    from newsletter.campaign_content import build_content
    from newsletter.errors import RenderError
    from newsletter.render.prepare import prepare
    from newsletter.site import Site

    site = Site.load(site_dir, environ={"NEWSLETTER_DATABASE_URL": f"sqlite:///{site_dir}/h.db"})
    content = build_content("h", [Text("en", "Subject", "", source)], "en")
    try:
        prepared = prepare(
            site,
            template="message",
            language="en",
            context={},
            campaign_id="h",
            now=datetime(2021, 4, 1, tzinfo=UTC),
            content=content,
        )
    except RenderError:
        return
    finally:
        site.close()
    assert not hostile(prepared.html.split("<body", 1)[-1])
