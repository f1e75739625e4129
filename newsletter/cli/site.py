"""Site-wide commands: config, db upgrade, check."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import JsonOpt, SiteOpt, console, load_site, print_json
from newsletter.settings import SETTINGS
from newsletter.site import Site

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
    app.command("check")(check)
    app.add_typer(db_app, name="db")


def config(site: SiteOpt = ".", as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Print the effective settings (secrets masked) and where each comes from."""
    loaded = Site.load(site)
    shown = loaded.settings.masked()
    if as_json:
        print_json(shown)
        return
    table = Table("setting", "environment variable", "value", "from")
    for s in SETTINGS:
        table.add_row(s.name, s.env, shown[s.name], loaded.settings.sources[s.name])
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Apply the shipped migrations (also done automatically on first use)."""
    from newsletter.store import Store
    from newsletter.store.migrate import current_revision

    loaded = Site.load(site)
    store = Store(loaded.settings["database_url"])
    console.print(f"schema at revision {current_revision(store)}")
    store.dispose()


def check(
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
    deliverability: Annotated[
        bool, typer.Option("--deliverability", help="Look up SPF, DKIM and DMARC of the sender domains.")
    ] = False,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="Sender domain to look up (default: the lists').")
    ] = None,
) -> None:
    """Validate the whole site: lists, feeds, templates in every language, schedules."""
    from newsletter.check import check_site

    if deliverability:
        _check_deliverability(load_site(site, sync=False), domain or [], as_json)
        return
    result = check_site(load_site(site, sync=False))
    if as_json:
        print_json(result.as_dict())
    else:
        result.print(console)
    raise typer.Exit(1 if result.errors else 0)


def _check_deliverability(site: Site, domains: list[str], as_json: bool) -> None:
    from newsletter.send.deliverability import check_site as check_domains

    reports = check_domains(site, domains)
    if as_json:
        print_json([r.__dict__ for r in reports])
    else:
        for r in reports:
            mark = "[red]✗[/]" if r.errors else "[green]✓[/]"
            console.print(f"{mark} {r.domain} (envelope sender domain {r.envelope_domain})")
            for line in r.ok:
                console.print(f"  [green]ok:[/] {line}", highlight=False, soft_wrap=True)
            for line in r.warnings:
                console.print(f"  [yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
            for line in r.errors:
                console.print(f"  [red]missing:[/] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if any(r.errors for r in reports) else 0)
