"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import getpass
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from newsletter.site import Site

SITE_KEY = "newsletter.site"


def _site_before_command(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """`newsletter --site DIR COMMAND`: the root's --site stands in unless the command has its own."""
    given = ctx.find_root().meta.get(SITE_KEY)
    # By name: Typer carries its own copy of click, whose ParameterSource is another class.
    source = ctx.get_parameter_source(param.name or "")
    if given is not None and getattr(source, "name", "") != "COMMANDLINE":
        return Path(given)
    return value


SiteOpt = Annotated[
    Path,
    typer.Option(
        "--site",
        envvar="NEWSLETTER_SITE",
        help="Site folder (templates/, lists/, schedules.yaml).",
        show_default=True,
        callback=_site_before_command,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# Wide enough for tables when the output is a pipe or a file (rich would assume 80 columns).
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


_opened: list[Site] = []
command_line: list[str] = []  # the arguments after `newsletter`, set by the root group


def load_site(path: Path, *, sync: bool = True) -> Site:
    """The site at `path`, its store migrated and (by default) its lists synced, as on every start.

    Sites loaded here are closed when the command ends (see `close_sites`).
    """
    site = Site.load(path)
    _opened.append(site)
    if sync:
        from newsletter.audience.lists import sync_lists

        report = sync_lists(site)
        for error in report.errors:
            err_console.print(f"[yellow]warning:[/] {error}", highlight=False, soft_wrap=True)
    return site


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def close_sites() -> None:
    """Dispose of the stores of every site a command opened."""
    while _opened:
        _opened.pop().close()


def cli_actor() -> tuple[str, str]:
    """(actor, via) of a command-line action: the OS user, and the command as typed."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = "unknown"
    return f"cli:{user}", "cli: newsletter " + shlex.join(command_line)


def audit(
    site: Site,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    subject: str | None = None,
) -> None:
    """Record a staff action done from the command line (see `newsletter.audit.record`)."""
    from newsletter import audit as log

    actor, via = cli_actor()
    log.record(site.store, actor, action, target, details, via, subject=subject)
