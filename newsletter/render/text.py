"""The plain-text alternative, made from the final HTML with html2text."""

from __future__ import annotations

import re

import html2text

# MJML's hidden preheader block and Outlook-only markup would show up as stray text.
HIDDEN = re.compile(r'<div style="display:none;[^"]*">.*?</div>', re.S)
MSO = re.compile(r"<!--\[if mso.*?<!\[endif\]-->", re.S)
HEAD = re.compile(r"<head\b.*?</head>", re.S)
BLANKS = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Readable text: paragraphs, lists, links as "text (url)" with the URL kept whole."""
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never wrap: a wrapped URL breaks in mail clients
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.inline_links = True
    converter.protect_links = False
    converter.unicode_snob = True  # keep é, ж, ã as they are
    converter.ignore_tables = True
    body = MSO.sub("", HEAD.sub("", HIDDEN.sub("", html)))
    text = converter.handle(body)
    lines = [line.strip() for line in text.splitlines()]
    return BLANKS.sub("\n\n", "\n".join(lines)).strip() + "\n"
