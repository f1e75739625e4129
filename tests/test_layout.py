"""The package's layout holds: no import circle (lazy imports included), no import up the pipeline.

The stages, lowest first: feeds -> render -> schedule -> send -> track -> report, with the shared
base below them all and audience (lists and subscribers) just above it; the dashboard's accounts,
the web app, the CLI and the program's glue (`newsletter run`, its scheduler and jobs) on top. A
module may import its own stage and the stages below, never one above.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "newsletter"
BASE = {"errors", "settings", "yamlfile", "tokens", "urls", "store", "site", "campaigns", "ratelimit"}
BASE |= {"findings", "campaign_content", "ids", "audit", "csvsafe"}
LEVELS = {name: 0 for name in BASE}
LEVELS |= {"audience": 1, "feeds": 2, "render": 3, "schedule": 4, "send": 5, "track": 6, "report": 7}
LEVELS |= {"accounts": 8, "web": 9, "cli": 10, "check": 10, "jobs": 10, "runner": 10, "service": 10}
LEVELS |= {"__main__": 11}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts and "versions" in path.parts:
            continue
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of the package that `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import module` imports the module; any other name is the package's own.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in modules else target)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _level(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    assert parts[1] in LEVELS, f"{module}: a new top-level module or stage; give it a level here"
    return LEVELS[parts[1]]


def test_no_import_circles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_no_stage_imports_one_above_it() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _level(target) > _level(module)
    )
    assert upward == []


def test_the_checks_see_lazy_imports() -> None:
    """The graph includes imports inside functions (else a circle could hide in one)."""
    graph = _graph()
    assert "newsletter.track.writer" in graph["newsletter.track.buffer"]
