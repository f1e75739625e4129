"""Markdown bodies of composed campaigns -> MJML blocks, sanitised, with their labelled links.

CommonMark (markdown-it-py) with the attrs and strikethrough extensions; raw HTML is off, so `<script>`
in the text stays text. Runs of ordinary blocks become one `<mj-text>` each, cleaned by the same kind of
allow-list (nh3) as feed items; two forms become MJML components of their own:

- a paragraph holding only a link marked `{.button}` -> `<mj-button>`:
  `[Endorse the declaration](https://... "declaration-sign-on"){.button}`
- a paragraph holding only an image -> `<mj-image>` (https images only; others are dropped).

A link's title is its tracking label when it looks like one (`declaration-sign-on`); `{label=...}`
does the same. The label is noted for the dashboard and never shown to the reader.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.attrs import attrs_plugin

LABEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TAGS = {"p", "br", "a", "strong", "em", "b", "i", "s", "del", "code", "pre", "ul", "ol", "li"}
TAGS |= {"blockquote", "h1", "h2", "h3", "h4", "hr", "img"}
ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt"}, "ol": {"start"}}
SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class RenderedBody:
    """A Markdown body as MJML, with (url, label) of each link, first use first."""

    mjml: Markup
    links: tuple[tuple[str, str], ...]
    text: str  # the visible text, to tell an empty body

    @property
    def empty(self) -> bool:
        return not self.text.strip()


def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False, "typographer": False})
        .use(attrs_plugin)
        .enable("strikethrough")
    )


_MD = _parser()


def _defuse(text: str) -> str:
    # "%%" starts a personal placeholder (%%r%%, %%name%%); a body must never be able to produce one.
    return text.replace("%%", "%\u2060%")


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    if name not in ATTRIBUTES.get(tag, ()):  # nh3 keeps title and lang on every tag unless told
        return None
    if tag == "img" and name == "src" and not value.lower().startswith("https://"):
        return None
    return value


def clean_html(markup: str) -> str:
    """Allow-listed HTML: simple blocks and inline markup, http(s)/mailto links, https images."""
    return nh3.clean(
        markup,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        attribute_filter=_keep_attribute,
        link_rel=None,
        strip_comments=True,
    )


def _label(attrs: dict[str, Any]) -> str:
    for candidate in (attrs.get("label"), attrs.get("title")):
        if isinstance(candidate, str) and LABEL.match(candidate.strip()):
            return candidate.strip()
    return ""


def _plain(children: list[Token]) -> str:
    return "".join(c.content for c in children if c.type in ("text", "code_inline", "softbreak"))


def _only(tokens: list[Token], i: int) -> list[Token] | None:
    """The inline children of the paragraph opening at `i`, if it is a paragraph."""
    if tokens[i].type != "paragraph_open" or i + 2 >= len(tokens) or tokens[i + 1].type != "inline":
        return None
    return list(tokens[i + 1].children or [])


def _button(children: list[Token]) -> tuple[str, str, str] | None:
    """(href, text, label) when the paragraph is one link marked {.button}."""
    kids = [c for c in children if not (c.type == "text" and not c.content.strip())]
    if len(kids) < 2 or kids[0].type != "link_open" or kids[-1].type != "link_close":
        return None
    if "button" not in str(kids[0].attrs.get("class", "")).split():
        return None
    return str(kids[0].attrs.get("href", "")), _plain(kids[1:-1]), _label(dict(kids[0].attrs))


def _image(children: list[Token]) -> tuple[str, str] | None:
    kids = [c for c in children if not (c.type == "text" and not c.content.strip())]
    if len(kids) != 1 or kids[0].type != "image":
        return None
    return str(kids[0].attrs.get("src", "")), _plain(list(kids[0].children or []))


def _safe_url(url: str, schemes: set[str]) -> str | None:
    url = url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    return url if scheme in schemes and "\n" not in url else None


@lru_cache(maxsize=256)
def render_body(text: str) -> RenderedBody:
    """`text` (Markdown) as MJML blocks for a `<mj-column>`; cached, so once per language and body."""
    tokens = _MD.parse(text)
    links: dict[str, str] = {}
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrs.get("href", ""))
                if _safe_url(href, {"http", "https"}):
                    label = _label(dict(child.attrs))
                    if label or href not in links:
                        links[href] = label or links.get(href, "")
    blocks: list[str] = []
    visible: list[str] = []
    run: list[Token] = []

    def flush() -> None:
        if not run:
            return
        cleaned = _defuse(clean_html(_MD.renderer.render(run, _MD.options, {})))
        if nh3.clean(cleaned, tags=set()).strip() or "<img src=" in cleaned:
            blocks.append(f"<mj-text>{cleaned}</mj-text>")
            visible.append(nh3.clean(cleaned, tags=set()) or "image")
        run.clear()

    i = 0
    while i < len(tokens):
        children = _only(tokens, i)
        button = _button(children) if children is not None else None
        image = _image(children) if children is not None else None
        if button and _safe_url(button[0], {"http", "https"}) and button[1].strip():
            flush()
            href, label_text = button[0].strip(), _defuse(button[1].strip())
            blocks.append(
                f'<mj-button href="{html.escape(href, quote=True)}">{html.escape(label_text)}</mj-button>'
            )
            visible.append(label_text)
            i += 3
            continue
        if image and _safe_url(image[0], {"https"}):
            flush()
            src, alt = image
            blocks.append(
                f'<mj-image src="{html.escape(src.strip(), quote=True)}" '
                f'alt="{html.escape(_defuse(alt), quote=True)}" />'
            )
            visible.append(alt or "image")
            i += 3
            continue
        run.append(tokens[i])
        i += 1
    flush()
    return RenderedBody(
        mjml=Markup("\n".join(blocks)),  # noqa: S704 - every block is escaped or cleaned by nh3 above
        links=tuple(links.items()),
        text=" ".join(visible),
    )
