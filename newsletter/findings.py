"""What a stage's `newsletter check` finds: errors, warnings and tables (gathered by `check.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckReport:
    stage: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # title, header, rows
