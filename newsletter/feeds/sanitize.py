"""Make feed HTML safe to put in an email: a strict allow-list on top of feedparser's own sanitiser.

feedparser cleans `text/html` content as it parses; this module is the second, stricter layer that
every stored fragment goes through, whatever its type. Plain text is escaped, not interpreted.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import nh3

__all__ = ["clean_html", "plain_to_html", "html_to_text", "printable", "safe_url", "first_image"]

# What an email client can show and nothing that runs, loads a frame, or submits anything.
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
# Removed together with everything inside them (nh3 strips other unknown tags but keeps their text).
DROP_WITH_CONTENT = {
    "script", "style", "iframe", "frame", "frameset", "form", "object", "embed", "applet", "noscript",
    "template", "svg", "math", "select", "textarea", "button", "input", "audio", "video", "canvas", "head",
    "title", "meta", "link", "base",
}  # fmt: skip
URL_SCHEMES = {"http", "https", "mailto"}
WEB_SCHEMES = ("http", "https")

# nh3 serialises every attribute as name="value" with quotes escaped, so an <img> tag is matchable.
# Control characters (but tab and line ends): invisible in a mail, and the MJML parser refuses the whole
# document over one, so a single item would stop a digest.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_IMG_TAG = re.compile(r'<img\b(?:\s+[\w:.-]+(?:="[^"]*")?)*\s*/?>')


def safe_url(
    url: str | None, base: str | None = None, *, schemes: tuple[str, ...] = WEB_SCHEMES
) -> str | None:
    """`url` made absolute against `base`, or None unless its scheme is one of `schemes`."""
    if not url:
        return None
    url = url.strip()
    if _CONTROL.search(url):  # no browser sends one, and it stops the MJML parser
        return None
    try:
        absolute = urljoin(base, url) if base else url
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in schemes or not parts.netloc:
        return None
    return absolute


def clean_html(fragment: str, base: str | None = None) -> str:
    """Sanitise an HTML fragment; relative links are resolved against `base` (or dropped without one)."""
    if not fragment or not fragment.strip():
        return ""

    def resolve(url: str) -> str | None:
        return safe_url(url, base)

    def keep(tag: str, attr: str, value: str) -> str | None:
        # Images load by themselves when the mail is opened: only over http(s), never data: or mailto:.
        if tag == "img" and attr == "src":
            scheme = urlsplit(value.strip()).scheme.lower() if value else ""
            if scheme and scheme not in WEB_SCHEMES:
                return None
        return value

    cleaned = nh3.clean(
        fragment,
        tags=TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=keep,
        url_schemes=URL_SCHEMES,
        url_relative=resolve,
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
    # An <img> whose source was refused is an empty box in the mail: drop it.
    cleaned = _CONTROL.sub("", cleaned)  # again: nh3 writes "&#27;" out as the character itself
    return _IMG_TAG.sub(lambda m: m.group(0) if ' src="' in m.group(0) else "", cleaned).strip()


def plain_to_html(text: str) -> str:
    """Plain text as HTML: escaped, paragraphs and line breaks kept."""
    text = _CONTROL.sub("", text).strip().replace("\r\n", "\n")
    if not text:
        return ""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + html.escape(p.strip()).replace("\n", "<br>") + "</p>" for p in paragraphs)


def printable(text: str) -> str:
    """`text` without control characters (tab and line ends kept)."""
    return _CONTROL.sub("", text)


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment, tags removed, entities decoded, whitespace collapsed."""
    if not fragment:
        return ""
    stripped = nh3.clean(fragment, tags=set(), clean_content_tags=DROP_WITH_CONTENT, strip_comments=True)
    # Only ASCII whitespace is collapsed: French typography's no-break spaces ("sida :") stay.
    text = re.sub(r"[ \t\r\n\f\v]+", " ", html.unescape(stripped)).strip(" ")
    return _CONTROL.sub("", text)  # after unescaping: "&#27;" is one too


def first_image(fragment: str) -> str | None:
    """The source of the first image of a cleaned fragment."""
    for match in _IMG_TAG.finditer(fragment):
        src = re.search(r'\ssrc="([^"]*)"', match.group(0))
        if src:
            return html.unescape(src.group(1))
    return None
