"""`newsletter bounces pull` (read the bounce mailbox) and `newsletter bounces process` (one message)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import JsonOpt, SiteOpt, console, err_console, load_site, print_json
from newsletter.errors import InputError
from newsletter.store import now_utc

bounces_app = typer.Typer(
    help="Bounces and complaints of SMTP sending, from the bounce mailbox or piped in by the MTA.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(bounces_app, name="bounces")


@bounces_app.command("pull")
def pull(site: SiteOpt = ".", as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Read the bounce mailbox once: apply what it recognises, move it to the processed folder."""
    from newsletter.track.bounce_mail import Outcome, pull_site

    outcomes: list[Outcome] = []
    pulled = pull_site(load_site(site, sync=False), now_utc(), outcomes)
    suppressed = sum(o.applied.suppressed for o in outcomes)
    if as_json:
        print_json({**pulled.__dict__, "suppressed": suppressed})
        return
    for error in pulled.errors:
        err_console.print(f"[yellow]warning:[/] {error}", highlight=False, soft_wrap=True)
    console.print(
        f"{pulled.seen} message(s): {pulled.recognised} bounce(s)/complaint(s) applied and moved, "
        f"{suppressed} address(es) suppressed, {pulled.left} left untouched"
    )


@bounces_app.command("process")
def process(
    file: Annotated[str, typer.Argument(help="A message file, or - for standard input.")] = "-",
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """Apply one message (a DSN or ARF report), e.g. piped in by Postfix; exit 0 either way."""
    from newsletter.track.bounce_mail import Outcome, site_handler

    if file == "-":
        raw = sys.stdin.buffer.read()
    else:
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            raise InputError(f"{file}: cannot read it ({exc.strerror})") from None
    outcomes: list[Outcome] = []
    site_handler(load_site(site, sync=False), now_utc(), outcomes)([raw])
    outcome = outcomes[0]
    applied = outcome.applied
    if as_json:
        print_json(
            {
                "recognised": outcome.recognised,
                "kind": outcome.report.kind,
                "why": outcome.why,
                "stored": applied.stored,
                "duplicates": applied.duplicates,
                "suppressed": applied.suppressed,
            }
        )
    elif outcome.recognised:
        console.print(
            f"{outcome.report.kind}: {applied.stored} event(s) stored, {applied.duplicates} already known, "
            f"{applied.suppressed} address(es) suppressed"
        )
    else:
        console.print(f"not recognised ({outcome.why}); nothing changed")
