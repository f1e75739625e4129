"""Declared feeds: the `[[feeds]]` tables of the site's newsletter.toml, read, validated and edited.

[[feeds]]
name = "hub-en"                 # lowercase letters, digits, dashes
url = "feeds/hub-en.xml"        # http(s)://, file://, or a path relative to the site
language = "en"                 # optional: omitted, the language comes from the feed
categories = ["Webinars"]       # optional: keep only items in one of these categories
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import tomlkit

from newsletter.errors import ConfigError, InputError
from newsletter.feeds.parse import normalize_language
from newsletter.findings import CheckReport
from newsletter.site import Site

__all__ = ["FeedConfig", "FeedsConfig", "load_feeds", "add_feed", "remove_feed", "local_path", "check_site"]

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
KEYS = ("name", "url", "language", "categories")


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    language: str | None = None  # None: from the feed
    categories: tuple[str, ...] = ()


@dataclass
class FeedsConfig:
    feeds: list[FeedConfig] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def named(self, name: str) -> FeedConfig | None:
        return next((f for f in self.feeds if f.name == name), None)


def local_path(url: str, site_root: Path) -> Path | None:
    """The file a `file://` URL or a plain path points at (relative to the site), or None for http(s)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(unquote(urlsplit(url).path))
    path = Path(url).expanduser()
    return path if path.is_absolute() else site_root / path


def validate_feed(raw: Any, site: Site, where: str) -> FeedConfig:
    """One `[[feeds]]` table as a FeedConfig, or a ConfigError saying what to change."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table with name and url")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; expected one of {', '.join(KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(
            f"{where}: field name: {name!r} is not a feed name; use lowercase letters, digits and dashes "
            f"(e.g. hub-en)"
        )
    where = f"{where} (name {name!r})"
    url = raw.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: field url: missing; give an http(s):// URL, a file:// URL or a path")
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        if not urlsplit(url).netloc:
            raise ConfigError(f"{where}: field url: {url!r} has no host")
    elif scheme not in ("", "file") and not re.match(r"^[a-zA-Z]:[\\/]", url):
        raise ConfigError(
            f"{where}: field url: scheme {scheme!r} in {url!r} is not supported; use http, https, file "
            f"or a path relative to the site"
        )
    language = raw.get("language")
    if language is not None:
        if not isinstance(language, str):
            raise ConfigError(f'{where}: field language: expected text such as "fr", got {language!r}')
        language = _site_language(site, language, f"{where}: field language")
    categories = raw.get("categories", [])
    if isinstance(categories, str):
        categories = [categories]
    if not isinstance(categories, list) or not all(isinstance(c, str) and c.strip() for c in categories):
        raise ConfigError(f"{where}: field categories: expected a list of names, got {categories!r}")
    return FeedConfig(name, url, language, tuple(c.strip() for c in categories))


def _site_language(site: Site, language: str, where: str) -> str:
    """The site's code for `language`; a regional variant the site lacks maps to its base (pt-BR -> pt)."""
    try:
        return site.check_language(language, where)
    except ConfigError:
        base = normalize_language(language, site.languages, site.default_language)
        if language.strip() and base in site.languages:
            return base
        raise


def load_feeds(site: Site) -> FeedsConfig:
    """The site's valid feeds; broken entries and repeated names are reported and left out."""
    result = FeedsConfig()
    raw_feeds = site.config.get("feeds", [])
    if not isinstance(raw_feeds, list):
        result.errors.append(f"{site.config_file}: feeds: expected [[feeds]] tables")
        return result
    for number, raw in enumerate(raw_feeds, start=1):
        where = f"{site.config_file} [[feeds]] #{number}"
        try:
            feed = validate_feed(raw, site, where)
        except ConfigError as exc:
            result.errors.append(str(exc))
            continue
        if result.named(feed.name):
            result.errors.append(f"{where}: field name: {feed.name!r} is declared twice; rename one")
            continue
        result.feeds.append(feed)
    return result


def _read_document(site: Site) -> tomlkit.TOMLDocument:
    path = site.config_file
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _write_document(site: Site, document: tomlkit.TOMLDocument) -> None:
    # Write then rename, so a crash never leaves a half-written configuration behind.
    path = site.config_file
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(tmp, path)
    site.config = document.unwrap()


def add_feed(
    site: Site, name: str, url: str, *, language: str | None = None, categories: tuple[str, ...] = ()
) -> FeedConfig:
    """Declare a feed in the site's newsletter.toml (comments and layout kept)."""
    raw: dict[str, Any] = {"name": name, "url": url}
    if language:
        raw["language"] = language
    if categories:
        raw["categories"] = list(categories)
    try:
        feed = validate_feed(raw, site, "feeds add")
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    document = _read_document(site)
    existing = document.get("feeds")
    if existing is not None and not isinstance(existing, list):
        raise ConfigError(f"{site.config_file}: feeds: expected [[feeds]] tables")
    if any(isinstance(t, dict) and t.get("name") == name for t in existing or []):
        raise InputError(f"feeds add: a feed named {name!r} already exists; remove it first or pick another")
    table = tomlkit.table()
    table.add("name", feed.name)
    table.add("url", feed.url)
    if feed.language:
        table.add("language", feed.language)
    if feed.categories:
        table.add("categories", list(feed.categories))
    if existing is None:
        document.append("feeds", tomlkit.aot())
    document["feeds"].append(table)  # type: ignore[union-attr]
    _write_document(site, document)
    return feed


def remove_feed(site: Site, name: str) -> None:
    """Take a feed out of the site's newsletter.toml."""
    document = _read_document(site)
    existing = document.get("feeds") or []
    index = next((i for i, t in enumerate(existing) if isinstance(t, dict) and t.get("name") == name), None)
    if index is None:
        declared = ", ".join(str(t.get("name")) for t in existing if isinstance(t, dict)) or "none"
        raise InputError(f"feeds remove: no feed named {name!r}; declared feeds: {declared}")
    del existing[index]
    if not existing:
        del document["feeds"]
    _write_document(site, document)


def check_site(site: Site) -> CheckReport:
    """`newsletter check` for feeds: names, URLs, languages, and that local feed files exist."""
    config = load_feeds(site)
    report = CheckReport(stage="feeds", errors=list(config.errors))
    rows = []
    for feed in config.feeds:
        path = local_path(feed.url, site.root)
        if path is not None and not path.is_file():
            report.errors.append(
                f"{site.config_file} [[feeds]] (name {feed.name!r}): field url: no file at {path}; "
                f"fix the path (relative to {site.root}) or use an http(s) URL"
            )
        rows.append([feed.name, feed.url, feed.language or "from the feed", ", ".join(feed.categories)])
    if not config.feeds and not config.errors:
        report.warnings.append(f"{site.config_file}: no [[feeds]] declared; digests will have no items")
    if rows:
        report.tables.append(("feeds", ["name", "url", "language", "categories"], rows))
    return report
