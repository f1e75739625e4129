"""The `newsletter` command: thin handlers that parse input, call the core and format the answer.

Each module here adds its commands to the root app with `register(app)`; one module per stage.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from newsletter.errors import NewsletterError


class _Group(TyperGroup):
    """Turns a NewsletterError anywhere below into a one-line message on stderr and exit code 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from newsletter.cli import common

        common.command_line[:] = args  # the command as typed, for the audit log
        return super().parse_args(ctx, args)  # type: ignore[no-any-return]

    def invoke(self, ctx: Any) -> Any:
        from newsletter.cli.common import close_sites, err_console

        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            close_sites()


app = typer.Typer(
    cls=_Group,
    name="newsletter",
    help="Multilingual newsletters for an information hub: feeds, templates, schedules, sending, tracking.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    site: Annotated[
        Path | None,
        typer.Option("--site", help="Site folder, for every command (also accepted after the command)."),
    ] = None,
) -> None:
    if site is not None:
        from newsletter.cli.common import SITE_KEY

        ctx.meta[SITE_KEY] = site


# Stage by stage, in pipeline order.
MODULES = (
    "site",
    "audience",
    "feeds",
    "render",
    "content",
    "schedule",
    "campaigns",
    "registrants",
    "send",
    "bounces",
    "web",
    "report",
    "audit",
)
for _name in MODULES:
    importlib.import_module(f"newsletter.cli.{_name}").register(app)


def main() -> None:
    app()
