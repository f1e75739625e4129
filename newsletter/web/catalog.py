"""The web app's own translation catalogs: extract, update, and check them.

Every `.html` template under `web/templates/` (public pages and the dashboard) and every `.py`
module under `web/` is scanned: `_("...")` and `ngettext` in templates; `_()`, `N_()` (a marker for
text translated later, e.g. a page title handed to a template) in Python.
A new template or handler is covered without any registration.

    newsletter i18n web        # extract into web/locale/web.pot, merge into each web.po
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from newsletter.web.i18n import DOMAIN, LOCALE_DIR

WEB_DIR = Path(__file__).parent
LANGUAGES = ("en", "fr", "es", "ru", "pt")  # the catalogs the package ships
SOURCE_LANGUAGE = "en"  # msgids are English: its catalog may leave msgstr empty
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def pot_path() -> Path:
    return LOCALE_DIR / f"{DOMAIN}.pot"


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract(now: datetime | None = None, root: Path = WEB_DIR) -> Catalog:
    """Every translatable string of the web templates and modules under `root`."""
    catalog = Catalog(project="newsletter web", creation_date=now, charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), METHOD_MAP, options_map=OPTIONS, keywords=KEYWORDS, strip_comment_tags=True
    ):
        if message:
            catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def update(now: datetime) -> list[Path]:
    """Write web.pot and merge it into every language's web.po (new strings untranslated)."""
    template = extract(now)
    with pot_path().open("wb") as fh:
        write_po(fh, template, width=100, omit_header=True, sort_output=True)
    written = []
    for language in LANGUAGES:
        path = po_path(language)
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        catalog.update(
            template, no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False
        )
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=True, ignore_obsolete=True, no_location=True)
        written.append(path)
    return written


@dataclass
class Gaps:
    """What one language's catalog lacks for the strings the code uses."""

    language: str
    missing: list[str] = field(default_factory=list)  # no entry, or an empty or fuzzy translation
    placeholders: list[str] = field(default_factory=list)  # %(name)s differ from the msgid


def gaps(language: str, template: Catalog | None = None) -> Gaps:
    """The strings of the web code that `language` does not translate (the source language: lacks)."""
    template = template or extract()
    with po_path(language).open("rb") as fh:
        catalog = read_po(fh, locale=language)
    found = Gaps(language)
    for message in template:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        entry = catalog.get(message.id)
        if entry is None:
            found.missing.append(msgid)
            continue
        if language == SOURCE_LANGUAGE:
            continue
        strings = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
        if entry.fuzzy or not all(strings):
            found.missing.append(msgid)
        elif any(sorted(PLACEHOLDER.findall(s or "")) != sorted(PLACEHOLDER.findall(msgid)) for s in strings):
            found.placeholders.append(msgid)
    return found
