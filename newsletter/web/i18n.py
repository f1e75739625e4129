"""Translations of the web pages: `web/locale/<lang>/LC_MESSAGES/web.po`, compiled in memory at start.

The .mo files are build products (git-ignored), so the .po catalogs are read with Babel and turned
into `gettext` translations here. `negotiate` picks a page language from an Accept-Language header.
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "web"


def N_(message: str) -> str:
    """Marks text for extraction that is translated later (a page title handed to a template)."""
    return message


@lru_cache(maxsize=32)
def translations(language: str) -> gettext.NullTranslations:
    """The catalog for `language` (its base language if only that exists), or the identity."""
    for lang in (language, language.split("-")[0]):
        path = LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=lang.replace("-", "_"))
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            return gettext.GNUTranslations(buffer)
    return gettext.NullTranslations()


def negotiate(accept_language: str, available: tuple[str, ...], default: str) -> str:
    """The best of `available` for an Accept-Language header (q-values honoured), else `default`."""
    wanted: list[tuple[float, int, str]] = []
    for n, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            wanted.append((-q, n, tag.strip().lower()))
    lowered = {lang.lower(): lang for lang in available}
    for _q, _n, tag in sorted(wanted):
        if tag in lowered:
            return lowered[tag]
        base = tag.split("-")[0]
        if base in lowered:
            return lowered[base]
    return default
