"""MJML to HTML with mjml-python, and a source lint that puts MJML mistakes at file:line.

mjml-python reports a broken document without a position and silently drops unknown tags, so each
template file is also checked on its own (Jinja tags blanked out, lines kept): every file must close
the MJML tags it opens, and use only MJML's tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import jinja2
import jinja2.meta
from mjml import mjml2html

from newsletter.errors import RenderError

KNOWN_TAGS = frozenset(
    """mjml mj-head mj-body mj-include mj-attributes mj-all mj-class mj-breakpoint mj-font mj-html-attributes
    mj-html-attribute mj-selector mj-preview mj-style mj-title mj-accordion mj-accordion-element
    mj-accordion-title mj-accordion-text mj-button mj-carousel mj-carousel-image mj-column mj-divider
    mj-group mj-hero mj-image mj-navbar mj-navbar-link mj-raw mj-section mj-social mj-social-element
    mj-spacer mj-table mj-text mj-wrapper""".split()
)
# Inside these, content is HTML and may hold anything (mj-raw, mj-text...): MJML tags are still checked.
JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
POSITION = re.compile(r"position (\d+):(\d+)")
TAG = re.compile(r"<(/?)((?:mj-[a-z-]+|mjml))\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>", re.S)


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def lint_source(path: Path, text: str | None = None) -> list[str]:
    """MJML mistakes in one template file, each as "file:line: what to fix"."""
    text = path.read_text(encoding="utf-8") if text is None else text
    source = JINJA.sub(_blank, text)
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    for match in TAG.finditer(source):
        closing, name, _attrs, self_closing = match.groups()
        line = source.count("\n", 0, match.start()) + 1
        if name not in KNOWN_TAGS:
            problems.append(f"{path}:{line}: unknown MJML tag <{name}>; see https://documentation.mjml.io")
            continue
        if self_closing:
            continue
        if not closing:
            stack.append((name, line))
        elif not stack:
            problems.append(f"{path}:{line}: </{name}> closes a tag that was never opened")
        elif stack[-1][0] != name:
            opened, at = stack[-1]
            problems.append(f"{path}:{line}: </{name}> found but <{opened}> (line {at}) is still open")
            return problems
        else:
            stack.pop()
    for name, line in stack:
        problems.append(f"{path}:{line}: <{name}> is never closed")
    return problems


_REFERENCES: dict[tuple[str, str], tuple[tuple[tuple[str, int], ...], list[Path]]] = {}


def referenced_files(env: jinja2.Environment, name: str, templates_dir: Path) -> list[Path]:
    """The template `name` and every layout and partial it extends or includes (cached until a
    template file changes)."""
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted(templates_dir.rglob("*.mjml")))
    cached = _REFERENCES.get((str(templates_dir), name))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found = _referenced_files(env, name, templates_dir)
    _REFERENCES[(str(templates_dir), name)] = (stamp, found)
    return found


def _referenced_files(env: jinja2.Environment, name: str, templates_dir: Path) -> list[Path]:
    seen: dict[str, Path] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        path = templates_dir / current
        seen[current] = path
        try:
            source = path.read_text(encoding="utf-8")
            refs = jinja2.meta.find_referenced_templates(env.parse(source))
        except (OSError, jinja2.TemplateSyntaxError):
            continue  # reported by the Jinja load itself
        todo.extend(r for r in refs if r)
    return list(seen.values())


def lint_files(paths: Iterable[Path]) -> list[str]:
    return [problem for path in paths if path.exists() for problem in lint_source(path)]


def compile_mjml(source: str, template: str, files: Iterable[Path]) -> str:
    """The HTML of an MJML document, or a RenderError naming the template file and line."""
    try:
        return mjml2html(source, disable_comments=True)
    except (ValueError, RuntimeError) as exc:
        problems = lint_files(files)
        if problems:
            raise RenderError(f"{problems[0]} (invalid MJML: {exc})") from None
        raise RenderError(f"template {template!r}: invalid MJML: {exc}{_near(source, str(exc))}") from None


def _near(source: str, message: str) -> str:
    """Where mjml-python's "position A:B" falls in the rendered MJML, as a line and its text."""
    found = POSITION.search(message)
    if not found:
        return ""
    offset = min(int(found.group(1)), len(source))
    line = source.count("\n", 0, offset) + 1
    text = source.splitlines()[line - 1].strip() if source else ""
    return f" (rendered line {line}: {text[:120]!r})"
