"""YAML files with positions: every mapping remembers where it started, for file:line:column errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from newsletter.errors import SourceError


class Located(dict[str, Any]):
    """A mapping from a YAML file that knows its position and the position of each key."""

    path: str = ""
    line: int = 0
    column: int = 0
    key_lines: dict[str, tuple[int, int]]

    def where(self, key: str | None = None) -> tuple[str, int, int]:
        if key is not None and key in self.key_lines:
            line, col = self.key_lines[key]
            return self.path, line, col
        return self.path, self.line, self.column

    def error(self, key: str | None, message: str) -> SourceError:
        path, line, col = self.where(key)
        return SourceError(path, line, col, message)


# libyaml's parser when PyYAML was built with it (5-7x faster on a large schedules.yaml); same marks.
_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    result = Located()
    result.path = loader.name
    result.line = node.start_mark.line + 1
    result.column = node.start_mark.column + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise SourceError(
                loader.name,
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
                f"duplicate key {key!r}",
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates and times stay strings: the schema parses them with their timezone, YAML's own guess loses it.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path | str, text: str | None = None) -> Any:
    """Load one YAML document; syntax errors become SourceError with file:line:column."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(
                path, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(path, text, exc) from None
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise SourceError(path, line, col, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        raise _reader_error(path, text, exc) from None
    except RecursionError:
        raise SourceError(path, None, None, "invalid YAML: nested too deep") from None
    except yaml.YAMLError as exc:  # anything else the loader refuses
        raise SourceError(path, None, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _reader_error(path: Path, text: str, exc: yaml.reader.ReaderError) -> SourceError:
    before = text[: exc.position]
    line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
    char = chr(exc.character) if isinstance(exc.character, int) else exc.character
    return SourceError(path, line, col, f"invalid YAML: character {char!r} is not allowed")
