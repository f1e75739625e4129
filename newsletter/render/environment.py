"""The Jinja2 environment for MJML templates: i18n, autoescape, and errors that name file and line."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from babel.support import NullTranslations

from newsletter.errors import RenderError
from newsletter.render import catalogs

SUFFIX = ".mjml"


def make_environment(templates_dir: Path, *, strict: bool = False) -> jinja2.Environment:
    """An environment loading `templates_dir`; StrictUndefined when `strict` (checks, previews)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        extensions=["jinja2.ext.i18n"],
        autoescape=True,  # MJML is markup: every inserted value is escaped unless marked safe
        undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return env


def install_translations(
    env: jinja2.Environment,
    translations: NullTranslations,
    on_missing: Callable[[str], None] | None = None,
) -> None:
    """Install `translations`; `on_missing(msgid)` hears of each string the catalog does not have."""
    if on_missing is None:
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        return
    catalog = getattr(translations, "_catalog", {})

    def gettext(message: str) -> str:
        if not catalog.get(message):
            on_missing(message)
        return translations.gettext(message)

    def ngettext(singular: str, plural: str, n: int) -> str:
        if not catalog.get((singular, 0)):
            on_missing(singular)
        return translations.ngettext(singular, plural, n)

    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]


@dataclass
class LanguageEnvironment:
    """An environment with one language's translations installed, kept between renders.

    Compiling the templates costs far more than rendering them, so each (site, language) keeps its
    environment until a catalog of its fallback chain changes (Jinja reloads changed templates itself).
    Renders hold `lock`: `missing` collects the strings the language's own catalog lacks.
    """

    env: jinja2.Environment
    translations: NullTranslations
    missing: dict[str, None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_ENVIRONMENTS: dict[tuple[str, tuple[str, ...], bool], tuple[tuple[int, ...], LanguageEnvironment]] = {}


def language_environment(templates_dir: Path, chain: Sequence[str], *, strict: bool) -> LanguageEnvironment:
    """The cached environment for the first language of `chain` (falling back along the rest)."""
    key = (str(templates_dir), tuple(chain), strict)
    stamp = tuple(_mtime(catalogs.po_path(templates_dir, language)) for language in chain)
    cached = _ENVIRONMENTS.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    env = make_environment(templates_dir, strict=strict)
    translations = catalogs.chain_translations(templates_dir, list(chain))
    found = LanguageEnvironment(env, translations)
    install_translations(env, translations, on_missing=found.missing.setdefault)
    _ENVIRONMENTS[key] = (stamp, found)
    return found


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def template_names(templates_dir: Path) -> list[str]:
    """The emails of a site: `<name>.mjml` at the top of templates/ (partials and layouts excluded)."""
    return sorted(p.stem for p in templates_dir.glob(f"*{SUFFIX}") if not p.name.startswith("_"))


def load_template(env: jinja2.Environment, name: str, templates_dir: Path) -> jinja2.Template:
    """The template `name` (e.g. "digest"), or a RenderError naming the file and line."""
    try:
        return env.get_template(name + SUFFIX)
    except jinja2.TemplateNotFound as exc:
        known = ", ".join(template_names(templates_dir)) or "(none)"
        raise RenderError(
            f"{templates_dir / (name + SUFFIX)}: no such template ({exc.name} not found); templates: {known}"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise syntax_error(exc, templates_dir) from None


def syntax_error(exc: jinja2.TemplateSyntaxError, templates_dir: Path) -> RenderError:
    path = exc.filename or str(templates_dir / (exc.name or "?"))
    return RenderError(f"{path}:{exc.lineno}: template syntax error: {exc.message}")


def render_error(exc: Exception, template: str, templates_dir: Path) -> RenderError:
    """A RenderError for an exception raised while rendering, located at the template line."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return syntax_error(exc, templates_dir)
    path, line = _template_frame(exc, templates_dir)
    if path is None:
        path, line = str(templates_dir / (template + SUFFIX)), None
    where = f"{path}:{line}" if line else path
    if isinstance(exc, jinja2.UndefinedError):
        hint = "pass it in the context or guard it with {% if ... is defined %}"
        return RenderError(f"{where}: undefined variable: {exc.message}; {hint}")
    return RenderError(f"{where}: {type(exc).__name__}: {exc}")


def _template_frame(exc: BaseException, templates_dir: Path) -> tuple[str | None, int | None]:
    """The innermost traceback frame that belongs to a template file (Jinja rewrites tracebacks so)."""
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    root = str(templates_dir.resolve())
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root) or filename.endswith(SUFFIX):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def render_block(template: jinja2.Template, block: str, context: dict[str, Any]) -> str:
    """The text of one block (subject, preheader), rendered with `context`, whitespace collapsed."""
    if block not in template.blocks:
        return ""
    ctx = template.new_context(context)
    return " ".join("".join(template.blocks[block](ctx)).split())
