"""Feed documents as a hostile or broken hub could serve them: parsed or refused, never active content,
neither in the stored item nor in the digest it goes into.

Property: `parse_feed` returns (items, or an error naming the problem) and never raises; no stored
field carries a script, an event handler, a `javascript:` or `data:` URL; links and images are
http(s) only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from hypothesis import example, given
from hypothesis import strategies as st

from newsletter.feeds.parse import parse_feed
from newsletter.render.content import item_view
from newsletter.render.prepare import prepare, sample_context
from newsletter.site import Site

LANGUAGES = ["en", "fr", "es", "ru", "pt"]
ACTIVE = re.compile(
    r"<\s*(script|iframe|object|embed|style|form)|\son\w+\s*=|javascript:|vbscript:|data:", re.I
)
HOSTILE = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVa&#x09;ScRiPt:alert(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<svg onload="alert(1)"><circle/></svg>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<style>body{display:none}</style><p style="background:url(javascript:alert(1))">p</p>',
    "<![CDATA[<script>x</script>]]>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<p>fine <b>text</b> &amp; more</p>",
]
piece = st.sampled_from(HOSTILE) | st.text(max_size=30)
html = st.lists(piece, max_size=4).map("".join)
url = st.sampled_from(
    [
        "https://hub.example.org/a",
        "/relative/b",
        "javascript:alert(1)",
        "data:text/html,x",
        "",
        "ftp://x/y",
        " ",
    ]
) | st.text(max_size=20)


def _rss(items: list[dict[str, str]], cdata: bool) -> bytes:
    def wrap(text: str) -> str:
        return f"<![CDATA[{text.replace(']]>', '')}]]>" if cdata else escape(text)

    body = "".join(
        f"<item><title>{wrap(i['title'])}</title><link>{escape(i['link'])}</link>"
        f"<guid>{escape(i['guid'])}</guid><description>{wrap(i['html'])}</description>"
        f'<enclosure url="{escape(i["image"], {chr(34): "&quot;"})}" type="image/png"/>'
        f"<pubDate>{escape(i['date'])}</pubDate></item>"
        for i in items
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    return f"{head}{body}</channel></rss>".encode()


def _atom(items: list[dict[str, str]], _cdata: bool) -> bytes:
    body = "".join(
        f'<entry><title>{escape(i["title"])}</title><link href="{escape(i["link"], {chr(34): "&quot;"})}"/>'
        f'<id>{escape(i["guid"])}</id><content type="html">{escape(i["html"])}</content>'
        f"<updated>{escape(i['date'])}</updated></entry>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        f"{body}</feed>"
    ).encode()


entries = st.lists(
    st.fixed_dictionaries(
        {
            "title": piece,
            "link": url,
            "guid": st.text(max_size=20),
            "html": html,
            "image": url,
            "date": st.sampled_from(["Wed, 14 Apr 2021 09:00:00 GMT", "2021-04-14T09:00:00Z", "", "soon"])
            | st.text(max_size=20),
        }
    ),
    max_size=4,
)


def _check(body: bytes) -> None:
    feed = parse_feed(
        body, {}, url="https://hub.example.org/feed", languages=LANGUAGES, default_language="en"
    )
    if feed.error:
        assert not feed.items and isinstance(feed.error, str)
    for item in feed.items:
        for value in (item.summary_html, item.content_html):
            assert not ACTIVE.search(value), value
        # Titles and authors are plain text (a "<" in them is text), escaped wherever they are inserted.
        assert isinstance(item.title, str) and isinstance(item.author, str)
        for link in (item.link, item.image_url):
            assert not link or link.startswith(("http://", "https://")), link


@given(entries, st.booleans(), st.sampled_from([_rss, _atom]))
@example(
    [{"title": "x", "link": "javascript:alert(1)", "guid": "1", "html": HOSTILE[1], "image": "", "date": ""}],
    True,
    _rss,
)
def test_fuzzed_feed_documents_parse_to_inert_items_or_an_error(
    items: list[dict[str, str]], cdata: bool, build: object
) -> None:
    _check(build(items, cdata))  # type: ignore[operator]


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_are_a_feed_error_not_an_exception(body: bytes) -> None:
    _check(body)


# A control character in an item stopped the whole digest (the MJML parser refuses it).
ESCAPE_ITEM = {
    "title": "t",
    "link": "https://hub.example.org/a",
    "guid": "",
    "html": "\x1b",
    "image": "",
    "date": "",
}
RENDERED_ACTIVE = re.compile(
    r"<\s*(script|iframe|object|embed|form)\b|\son\w+\s*=|javascript:|vbscript:", re.I
)
NOW = datetime(2021, 4, 14, 9, tzinfo=UTC)


def test_fuzzed_feed_items_render_into_a_digest_without_active_content(render_site: Site) -> None:
    @given(entries.filter(bool), st.booleans())
    @example([dict(ESCAPE_ITEM)], False)
    @example([dict(ESCAPE_ITEM, title="\x1b", html="&#27;")], False)
    def render(items: list[dict[str, str]], cdata: bool) -> None:
        feed = parse_feed(
            _rss(items, cdata),
            {},
            url="https://hub.example.org/feed",
            languages=LANGUAGES,
            default_language="en",
        )
        context = sample_context(render_site, "en", NOW)
        context["items"] = [
            item_view(
                {"title": i.title, "link": i.link, "summary_html": i.summary_html, "language": "en"},
                "en",
                False,
            )
            for i in feed.items
        ]
        prepared = prepare(
            render_site, template="digest", language="en", context=context, campaign_id="fuzz", now=NOW
        )
        found = RENDERED_ACTIVE.search(prepared.html)
        assert not found, prepared.html[max(0, found.start() - 200) : found.end() + 200]
        assert "<mj-" not in prepared.html  # no item broke the layout open

    render()
