"""A site: a folder with templates/, lists/, schedules.yaml and an optional newsletter.toml.

`Site` is what every command and the web app are handed: its folder, its settings, its languages,
and the store it opens lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError

from newsletter.errors import ConfigError
from newsletter.settings import CONFIG_FILE, Settings, load_settings, read_toml
from newsletter.store import Store

DEFAULT_LANGUAGES = ("en",)


def pick_language(chain: Sequence[str], offered: Sequence[str], default: str) -> str:
    """The first language of `chain` on `offered` (case-insensitive), else `default` or the first offered.

    The one rule for "which campaign language does this reader get": the planner's counts and the
    sender's choice must agree.
    """
    by_lower = {lang.lower(): lang for lang in offered}
    for language in chain:
        found = by_lower.get(language.strip().replace("_", "-").lower())
        if found is not None:
            return found
    if default in offered or not offered:
        return default
    return offered[0]


@dataclass
class Site:
    root: Path
    settings: Settings
    config: dict[str, Any] = field(default_factory=dict)  # the whole newsletter.toml

    @classmethod
    def load(cls, root: Path | str = ".", environ: dict[str, str] | None = None, **overrides: Any) -> Site:
        root = Path(root).resolve()
        if not root.is_dir():
            raise ConfigError(f"--site {root}: no such folder")
        settings = load_settings(root, environ)
        if overrides:
            settings = settings.replace(**overrides)
        config_path = root / CONFIG_FILE
        config = read_toml(config_path) if config_path.exists() else {}
        site = cls(root=root, settings=settings, config=config)
        site._validate_languages()
        return site

    # -- layout
    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def lists_dir(self) -> Path:
        return self.root / "lists"

    @property
    def content_dir(self) -> Path:
        return self.root / "content"

    @property
    def schedules_file(self) -> Path:
        return self.root / "schedules.yaml"

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def outbox_dir(self) -> Path:
        return self.root / self.settings["outbox_dir"]

    # -- languages
    @property
    def site_table(self) -> dict[str, Any]:
        table = self.config.get("site", {})
        return table if isinstance(table, dict) else {}

    @property
    def name(self) -> str:
        return str(self.site_table.get("name", self.root.name))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.site_table.get("languages", DEFAULT_LANGUAGES))

    @property
    def default_language(self) -> str:
        return str(self.site_table.get("default_language", self.languages[0]))

    def fallback_chain(self, language: str) -> list[str]:
        """Languages to try for `language`, most specific first, ending with the default language.

        Configured in `[site.fallback]` (e.g. `pt-BR = ["pt", "en"]`); otherwise the language, its
        base language (pt-BR -> pt), then the site's default.
        """
        configured = self.site_table.get("fallback", {}).get(language)
        chain = [language, *(configured or [])]
        if configured is None and "-" in language:
            chain.append(language.split("-")[0])
        chain.append(self.default_language)
        seen: list[str] = []
        for lang in chain:
            if lang not in seen:
                seen.append(lang)
        return seen

    def check_language(self, language: str, where: str = "language") -> str:
        """Return the site's spelling of `language`, or raise saying which languages exist."""
        for lang in self.languages:
            if lang.lower() == language.strip().lower().replace("_", "-"):
                return lang
        raise ConfigError(
            f"{where}: unknown language {language!r}; this site offers {', '.join(self.languages)}"
        )

    def _validate_languages(self) -> None:
        where = f"{self.config_file} [site] languages"
        if not self.languages:
            raise ConfigError(f"{where}: list at least one language")
        for lang in self.languages:
            try:
                Locale.parse(lang.replace("-", "_"))
            except (UnknownLocaleError, ValueError):
                raise ConfigError(
                    f"{where}: {lang!r} is not a language Babel knows (use codes like en, fr, pt-BR)"
                ) from None
        if self.default_language not in self.languages:
            raise ConfigError(
                f"{self.config_file} [site] default_language: {self.default_language!r} is "
                f"not in languages {list(self.languages)}"
            )

    # -- store
    @cached_property
    def store(self) -> Store:
        return Store(self.settings["database_url"])

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
            del self.__dict__["store"]
