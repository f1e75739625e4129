"""What a composed campaign says in each language, and how far each translation is behind its source.

One text per language: subject, preheader and a Markdown body. On disk that is
`content/<campaign>/<lang>.md` with a small front matter; in the store, a revision's texts. A
translation names its `source` language and the `source_hash` of the source text it was written from;
when the source changes, its hash changes and the translation is *outdated*. The hash covers subject,
preheader and body (not the layout of the front matter), so a file and its store copy hash alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from newsletter.errors import SourceError
from newsletter.yamlfile import Located, load_yaml

Status = Literal["source", "translated", "outdated", "missing"]
FRONT_KEYS = ("subject", "preheader", "source", "source_hash")
FENCE = "---"


@dataclass(frozen=True)
class Text:
    """One language of a composed campaign."""

    language: str
    subject: str
    preheader: str = ""
    body: str = ""
    source: str = ""  # the language this text was translated from ("" for the source itself)
    source_hash: str = ""  # text_hash() of that source when it was translated
    where: str = ""  # the file it came from, or "store revision N"

    @property
    def hash(self) -> str:
        return text_hash(self.subject, self.preheader, self.body)


@dataclass(frozen=True)
class Content:
    """Every language of one composed campaign; `source` is the language the others translate."""

    name: str
    source: str
    texts: Mapping[str, Text] = field(default_factory=dict)

    def status(self, language: str) -> Status:
        text = self.texts.get(language)
        if text is None:
            return "missing"
        if language == self.source:
            return "source"
        source = self.texts.get(self.source)
        if source is None or text.source_hash != source.hash:
            return "outdated"
        return "translated"

    def statuses(self, languages: Iterable[str]) -> dict[str, Status]:
        return {language: self.status(language) for language in languages}

    def pick(self, chain: Sequence[str]) -> Text | None:
        """The text a reader of `chain[0]` gets: theirs, else the next language of the chain that has one."""
        for language in chain:
            if language in self.texts:
                return self.texts[language]
        return self.texts.get(self.source)


def text_hash(subject: str, preheader: str, body: str) -> str:
    """A short, stable hash of what a text says (line ends and trailing blanks do not count)."""
    norm = [_normalise(s) for s in (subject, preheader, body)]
    return hashlib.sha256(json.dumps(norm, ensure_ascii=False).encode("utf-8")).hexdigest()[:12]


def _normalise(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def parse_text(path: Path | str, raw: str, language: str) -> Text:
    """A `<lang>.md` file: front matter between `---` lines, then Markdown. SourceError says where."""
    raw = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = raw.split("\n")
    if not lines or lines[0].strip() != FENCE:
        raise SourceError(
            path, 1, 1, "expected front matter: a first line '---', then 'subject: ...', then '---'"
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
    except StopIteration:
        raise SourceError(path, 1, 1, "front matter is not closed: add a line '---' after it") from None
    meta = load_yaml(path, "\n" + "\n".join(lines[1:end]))  # the leading line keeps line numbers
    if meta is None:
        meta = Located()
        meta.path, meta.line, meta.column, meta.key_lines = str(path), 2, 1, {}
    if not isinstance(meta, Located):
        raise SourceError(path, 2, 1, "front matter: expected 'key: value' lines (subject, preheader, ...)")
    for key in meta:
        if key not in FRONT_KEYS:
            raise meta.error(str(key), f"unknown field {key!r}; expected one of {', '.join(FRONT_KEYS)}")
    values: dict[str, str] = {}
    for key in FRONT_KEYS:
        value: Any = meta.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise meta.error(key, f"{key}: expected text, got {type(value).__name__}")
        values[key] = str(value).strip()
    if not values["subject"]:
        raise meta.error(
            None if "subject" not in meta else "subject", "missing 'subject': the email's subject"
        )
    return Text(
        language=language,
        subject=values["subject"],
        preheader=values["preheader"],
        body="\n".join(lines[end + 1 :]).strip("\n"),
        source=values["source"],
        source_hash=values["source_hash"],
        where=str(path),
    )


def format_text(text: Text) -> str:
    """`text` as a `<lang>.md` file (what `parse_text` reads back)."""
    head = [f"subject: {json.dumps(text.subject, ensure_ascii=False)}"]
    if text.preheader:
        head.append(f"preheader: {json.dumps(text.preheader, ensure_ascii=False)}")
    if text.source:
        head += [f"source: {text.source}", f"source_hash: {text.source_hash}"]
    return "\n".join([FENCE, *head, FENCE, "", text.body.strip("\n"), ""])


def build_content(name: str, texts: Iterable[Text], default_source: str) -> Content:
    """Texts -> Content; the source is the language translations name, else the one untranslated text.

    SourceError when the texts disagree (two sources named, or a translation of a language that
    has no text)."""
    by_language = {t.language: t for t in texts}
    named = {t.source for t in by_language.values() if t.source}
    if len(named) > 1:
        first = next(t for t in by_language.values() if t.source)
        raise SourceError(
            first.where,
            1,
            None,
            f"translations of {name!r} name different sources: {', '.join(sorted(named))}",
        )
    if named:
        source = named.pop()
    else:
        originals = [lang for lang, t in by_language.items() if not t.source]
        source = default_source if default_source in by_language or not originals else originals[0]
    for text in by_language.values():
        if text.language == source and text.source:
            raise SourceError(
                text.where, 1, None, f"source: {text.source!r}, but {source!r} is the source language"
            )
    return Content(name=name, source=source, texts=by_language)


def stamp(text: Text, source: Text) -> Text:
    """`text` marked as translated from the current `source` (clears *outdated*)."""
    return Text(
        language=text.language,
        subject=text.subject,
        preheader=text.preheader,
        body=text.body,
        source=source.language,
        source_hash=source.hash,
        where=text.where,
    )


def read_content(directory: Path, name: str, default_source: str) -> tuple[Content, list[SourceError]]:
    """`directory/<lang>.md` files as Content, with the errors of the files that did not parse."""
    texts: list[Text] = []
    errors: list[SourceError] = []
    for path in sorted(directory.glob("*.md")):
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            errors.append(SourceError(path, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
            continue
        try:
            texts.append(parse_text(path, raw, path.stem))
        except SourceError as exc:
            errors.append(exc)
    try:
        return build_content(name, texts, default_source), errors
    except SourceError as exc:
        return Content(name=name, source=default_source, texts={t.language: t for t in texts}), [*errors, exc]
