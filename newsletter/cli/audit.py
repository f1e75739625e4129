"""`newsletter audit`: the log of staff actions, newest first."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from newsletter import audit as log
from newsletter import csvsafe
from newsletter.cli.common import JsonOpt, SiteOpt, console, load_site, print_json
from newsletter.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def _day(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InputError(f"{option} {value!r}: expected a date or time such as 2021-06-01") from None


def audit(
    site: SiteOpt = ".",  # type: ignore[assignment]
    actor: Annotated[str, typer.Option("--actor", help="Only this actor (email or cli:USER).")] = "",
    action: Annotated[str, typer.Option("--action", help="Only this action (send, pause, forget...).")] = "",
    target: Annotated[str, typer.Option("--target", help="Only targets containing this text.")] = "",
    since: Annotated[str | None, typer.Option("--since", help="From this date (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this date (UTC).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entries.")] = 200,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Who did what, when, and from which command or page."""
    where = log.Filter(actor, action, target, _day(since, "--since"), _day(until, "--until"))
    found = log.entries(load_site(site).store, where, limit=limit)
    if as_json:
        print_json(found)
        return
    if as_csv:
        csvsafe.writer(sys.stdout).writerows(log.csv_rows(found))
        return
    table = Table("when (UTC)", "who", "action", "target", "via", "details")
    for e in found:
        table.add_row(
            e["at"][:19], e["actor"], e["action"], e["target"], e["via"], log.details_text(e["details"])
        )
    console.print(table)
    console.print(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'}")
