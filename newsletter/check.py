"""`newsletter check`: every stage validates its part of the site; the findings are gathered here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from newsletter.site import Site

# Each returns a CheckReport for its stage. Dotted paths, so a stage is imported only when checked.
CHECKERS = (
    "newsletter.audience.lists:check_site",
    "newsletter.feeds.config:check_site",
    "newsletter.render.check:check_site",
    "newsletter.schedule.check:check_site",
    "newsletter.send.check:check_site",
    "newsletter.track.check:check_site",
)


@dataclass
class CheckReport:
    stage: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # title, header, rows


@dataclass
class SiteCheck:
    reports: list[CheckReport]

    @property
    def errors(self) -> list[str]:
        return [e for r in self.reports for e in r.errors]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "stages": [
                {
                    "stage": r.stage,
                    "errors": r.errors,
                    "warnings": r.warnings,
                    "tables": [{"title": t, "header": h, "rows": rows} for t, h, rows in r.tables],
                }
                for r in self.reports
            ],
        }

    def print(self, console: Console) -> None:
        for report in self.reports:
            mark = "[red]✗[/]" if report.errors else "[green]✓[/]"
            console.print(f"{mark} {report.stage}")
            for error in report.errors:
                console.print(f"  [red]error:[/] {error}", highlight=False, soft_wrap=True)
            for warning in report.warnings:
                console.print(f"  [yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
            for title, header, rows in report.tables:
                table = Table(*header, title=title)
                for row in rows:
                    table.add_row(*row)
                console.print(table)
        total = len(self.errors)
        console.print("[green]site is valid[/]" if not total else f"[red]{total} error(s)[/]")


def check_site(site: Site) -> SiteCheck:
    reports = []
    for path in CHECKERS:
        module, func = path.split(":")
        reports.append(getattr(importlib.import_module(module), func)(site))
    return SiteCheck(reports)
