"""schedules.yaml and lists/*.yaml as a person could mistype them: a clear error or a valid result.

Property: parsing gives Schedules / a MailingList, or raises a ConfigError (a NewsletterError) whose
message names the file; never another exception. The documents are the example site's own, with keys
and values swapped for odd ones, plus arbitrary YAML and text.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from newsletter.audience.lists import parse_list
from newsletter.errors import ConfigError
from newsletter.schedule.config import parse_schedules
from newsletter.site import Site
from tests.conftest import REPO

SCHEDULES = yaml.safe_load((REPO / "schedules.yaml").read_text(encoding="utf-8"))
LIST = yaml.safe_load((REPO / "lists" / "members.yaml").read_text(encoding="utf-8"))
odd = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["2021-04-21T10:00", "25:99", "P1D", "-1d", "every monday 09:00", "Mars/Olympus", "xx"])
    | st.dates().map(str)
    | st.datetimes().map(str),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(doc: Any, changes: list[tuple[int, Any, bool]]) -> Any:
    """`doc` with some nodes replaced by odd values (or removed)."""
    doc = copy.deepcopy(doc)
    for pick, value, remove in changes:
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return value
        path = paths[pick % len(paths)]
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if remove:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return doc


changes = st.lists(st.tuples(st.integers(0, 10**6), odd, st.booleans()), min_size=1, max_size=4)


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


documents = changes.map(lambda c: _dump(_mutate(SCHEDULES, c))) | odd.map(_dump) | st.text(max_size=200)


def test_a_control_character_is_a_config_error_with_its_line_and_column(site: Site) -> None:
    with pytest.raises(ConfigError, match=r"schedules\.yaml:2:3: invalid YAML: character '\\x1f'"):
        parse_schedules(site, "events:\n  \x1f")


def test_fuzzed_schedules_parse_or_raise_a_config_error(site: Site) -> None:
    @given(documents)
    def parse(text: str) -> None:
        try:
            parse_schedules(site, text)
        except ConfigError as exc:
            assert "schedules.yaml" in str(exc), str(exc)

    parse()


def test_fuzzed_list_files_parse_or_raise_a_config_error(site: Site, tmp_path: Path) -> None:
    path = site.lists_dir / "fuzzed.yaml"

    @given(changes.map(lambda c: _dump(_mutate(LIST, c))) | odd.map(_dump) | st.text(max_size=200))
    def parse(text: str) -> None:
        path.write_text(text, encoding="utf-8")
        try:
            parse_list(path, site)
        except ConfigError as exc:
            assert "fuzzed.yaml" in str(exc), str(exc)

    parse()
