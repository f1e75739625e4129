"""Translation catalogs: extract, update and compile with Babel; load per language, compiling when stale.

Catalogs live in `templates/locale/<lang>/LC_MESSAGES/messages.po` (pt-BR is spelled pt_BR there).
The compiled `.mo` files are not committed: `load_translations` compiles a catalog whenever its `.mo`
is missing or older than its `.po`, so an edited translation shows up on the next render.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po, write_po
from babel.support import NullTranslations, Translations

from newsletter.errors import RenderError

DOMAIN = "messages"
METHOD_MAP = [("**.mjml", "jinja2")]
EXTRACT_OPTIONS = {
    "**.mjml": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
}


def locale_dir(templates_dir: Path) -> Path:
    return templates_dir / "locale"


def po_path(templates_dir: Path, language: str) -> Path:
    return locale_dir(templates_dir) / language.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


def pot_path(templates_dir: Path) -> Path:
    return locale_dir(templates_dir) / f"{DOMAIN}.pot"


def read_catalog(path: Path, language: str | None = None) -> Catalog:
    """Parse a .po file; a broken file raises a RenderError naming its line and what is wrong."""
    try:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language.replace("-", "_") if language else None, abort_invalid=True)
    except PoFileError as exc:
        raise RenderError(f"{path}:{exc.lineno + 1}: broken catalog: {exc}; fix the entry there") from None
    except UnicodeDecodeError as exc:
        raise RenderError(f"{path}: broken catalog: not UTF-8 ({exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise RenderError(f"{path}: cannot read catalog: {exc.strerror}") from None
    for message, errors in catalog.check():
        if errors and not message.fuzzy:
            raise RenderError(
                f"{path}:{message.lineno}: broken translation of {message.id!r}: {errors[0]}; "
                "the translation must use the same %(placeholders)s as the original"
            )
    return catalog


def load_translations(templates_dir: Path, language: str) -> NullTranslations:
    """The translations of `language` (NullTranslations when it has no catalog)."""
    po = po_path(templates_dir, language)
    if not po.exists():
        return NullTranslations()
    mo = po.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
        catalog = read_catalog(po, language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
        try:
            # A temp file renamed into place: a render in another thread never reads half a .mo.
            tmp = mo.with_name(f".{mo.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, mo)
        except OSError:
            pass  # a read-only site still renders from the catalog in memory
        buffer.seek(0)
        return Translations(buffer, domain=DOMAIN)
    with mo.open("rb") as fh:
        return Translations(fh, domain=DOMAIN)


def chain_translations(templates_dir: Path, chain: list[str]) -> NullTranslations:
    """Translations for the first language of `chain`, falling back along the rest of it."""
    first = load_translations(templates_dir, chain[0])
    for language in chain[1:]:
        first.add_fallback(load_translations(templates_dir, language))
    return first


def extract(templates_dir: Path, now: datetime) -> Catalog:
    """Extract every translatable string of the templates into `templates/locale/messages.pot`."""
    catalog = Catalog(project="newsletter", creation_date=now, charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(templates_dir), METHOD_MAP, options_map=EXTRACT_OPTIONS
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    path = pot_path(templates_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=False)
    return catalog


def update(templates_dir: Path, languages: list[str], now: datetime) -> list[Path]:
    """Merge the .pot into each language's .po (created when missing); returns the files written."""
    pot = pot_path(templates_dir)
    if not pot.exists():
        raise RenderError(f"{pot}: no template catalog; run `newsletter i18n extract` first")
    template = read_catalog(pot)
    written = []
    for language in languages:
        po = po_path(templates_dir, language)
        if po.exists():
            catalog = read_catalog(po, language)
        else:
            catalog = Catalog(locale=Locale.parse(language.replace("-", "_")), creation_date=now)
        catalog.update(template, update_header_comment=False)
        po.parent.mkdir(parents=True, exist_ok=True)
        with po.open("wb") as fh:
            write_po(fh, catalog, width=100, ignore_obsolete=True)
        written.append(po)
    return written


def compile_all(templates_dir: Path, languages: list[str]) -> list[Path]:
    """Write each language's .mo from its .po (a broken .po raises, naming its line)."""
    written = []
    for language in languages:
        po = po_path(templates_dir, language)
        if not po.exists():
            raise RenderError(f"{po}: no catalog for {language!r}; run `newsletter i18n update`")
        catalog = read_catalog(po, language)
        with po.with_suffix(".mo").open("wb") as fh:
            write_mo(fh, catalog)
        written.append(po.with_suffix(".mo"))
    return written


@dataclass
class Completeness:
    """How much of the templates' text one language's catalog translates."""

    language: str
    total: int
    translated: int
    missing: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.translated / self.total if self.total else 100.0


def template_messages(templates_dir: Path) -> list[str]:
    """The msgids the templates use (singular forms), in order of first use."""
    seen: dict[str, None] = {}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(templates_dir), METHOD_MAP, options_map=EXTRACT_OPTIONS
    ):
        seen.setdefault(message[0] if isinstance(message, tuple) else message, None)
    return list(seen)


def completeness(templates_dir: Path, language: str, msgids: list[str]) -> Completeness:
    """Which of `msgids` the catalog of `language` leaves untranslated or fuzzy."""
    po = po_path(templates_dir, language)
    result = Completeness(language, total=len(msgids), translated=0)
    if not po.exists():
        result.missing = list(msgids)
        return result
    catalog = read_catalog(po, language)
    for msgid in msgids:
        message = catalog.get(msgid)
        strings = message.string if message is not None else ""
        filled = all(strings) if isinstance(strings, tuple) else bool(strings)
        if message is None or not filled:
            result.missing.append(msgid)
        elif message.fuzzy:
            result.fuzzy.append(msgid)
        else:
            result.translated += 1
    return result
