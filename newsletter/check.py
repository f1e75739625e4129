"""`newsletter check`: every stage validates its part of the site; the findings are gathered here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from newsletter.audience import lists
from newsletter.feeds import config as feeds
from newsletter.findings import CheckReport
from newsletter.render import check as render
from newsletter.schedule import check as schedule
from newsletter.send import check as send
from newsletter.site import Site
from newsletter.track import check as track

# Each returns a CheckReport for its stage, in the pipeline's order.
CHECKERS: tuple[Callable[[Site], CheckReport], ...] = (
    lists.check_site,
    feeds.check_site,
    render.check_site,
    schedule.check_site,
    send.check_site,
    track.check_site,
)


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
    return SiteCheck([checker(site) for checker in CHECKERS])
