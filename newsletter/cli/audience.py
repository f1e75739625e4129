"""`newsletter lists ...` and `newsletter subscribers ...`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter.audience import subscribers as people
from newsletter.audience.importer import import_csv
from newsletter.audience.lists import list_counts, sync_lists
from newsletter.cli.common import (
    JsonOpt,
    SiteOpt,
    cli_actor,
    console,
    err_console,
    load_site,
    print_json,
)

lists_app = typer.Typer(help="Mailing lists, defined in lists/*.yaml.", no_args_is_help=True)
subs_app = typer.Typer(help="Subscribers: import, export, show, forget.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(lists_app, name="lists")
    app.add_typer(subs_app, name="subscribers")


@lists_app.command("sync")
def lists_sync(site: SiteOpt = ".", as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Sync lists/*.yaml into the store (also done on every start)."""
    report = sync_lists(load_site(site, sync=False))
    if as_json:
        print_json(
            {
                "synced": [m.slug for m in report.lists],
                "deactivated": report.deactivated,
                "errors": report.errors,
            }
        )
    else:
        for error in report.errors:
            err_console.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        console.print(f"synced {len(report.lists)} list(s): {', '.join(m.slug for m in report.lists)}")
        if report.deactivated:
            console.print(f"deactivated (file removed): {', '.join(report.deactivated)}")
    raise typer.Exit(1 if report.errors else 0)


@lists_app.command("show")
def lists_show(site: SiteOpt = ".", as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Lists with counts per status and per language."""
    counts = list_counts(load_site(site).store)
    if as_json:
        print_json(counts)
        return
    table = Table(
        "list",
        "total",
        "confirmed",
        "unconfirmed",
        "unsubscribed",
        "bounced",
        "complained",
        "confirmed by language",
    )
    for c in counts:
        s = c["statuses"]
        langs = ", ".join(f"{k} {v}" for k, v in sorted(c["confirmed_by_language"].items()))
        table.add_row(
            c["slug"],
            str(c["total"]),
            *(str(s[k]) for k in ("confirmed", "unconfirmed", "unsubscribed", "bounced", "complained")),
            langs,
        )
    console.print(table)


@subs_app.command("import")
def subscribers_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header row: email, name, language, timezone, country, status; other "
            "columns become attributes. Mailchimp and listmonk exports are read as they come."
        ),
    ],
    list_slug: Annotated[str, typer.Option("--list", help="List slug to subscribe the rows to.")],
    consent: Annotated[
        str,
        typer.Option(
            "--consent", help='Basis of consent, recorded per row: "imported from the 2021 partner list".'
        ),
    ],
    status: Annotated[
        str | None,
        typer.Option("--status", help="Status of rows whose file states none (confirmed, unconfirmed...)."),
    ] = None,
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """Import subscribers from a CSV file into a list, in one transaction, consent status from the file."""
    report = import_csv(
        load_site(site), file, list_slug, consent=consent, status=status, audit_as=cli_actor()
    )
    if as_json:
        print_json(report.as_dict())
    else:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items()))
        console.print(
            f"{file} ({report.format}, {report.encoding}) -> {list_slug}: {report.accepted} accepted, "
            f"{report.updated} updated, {report.unchanged} unchanged, {report.suppressed} suppressed, "
            f"{len(report.rejected)} rejected" + (f" ({statuses})" if statuses else ""),
            highlight=False,
        )
        for r in report.rejected:
            err_console.print(f"  {file}:{r.line}: {r.reason}", highlight=False, soft_wrap=True)


@subs_app.command("export")
def subscribers_export(
    list_slug: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    site: SiteOpt = ".",  # type: ignore[assignment]
) -> None:
    """Export subscribers as CSV (the import's columns)."""
    store = load_site(site).store
    if out is None:
        count = people.export_csv(store, sys.stdout, list_slug)
    else:
        tmp = out.with_name(out.name + ".part")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            count = people.export_csv(store, fh, list_slug)
        tmp.replace(out)  # no half-written export left behind
    err_console.print(f"exported {count} subscriber(s)")


@subs_app.command("show")
def subscribers_show(email: str, site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Everything stored about one person, as JSON (the data-access right)."""
    data = people.show(load_site(site).store, email)
    if data is None:
        err_console.print(f"no subscriber {email}")
        raise typer.Exit(1)
    print_json(data)


@subs_app.command("forget")
def subscribers_forget(email: str, site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Erase a person; a hashed suppression entry keeps them from ever being mailed again."""
    loaded = load_site(site)
    found = people.forget(loaded.store, email, audit_as=cli_actor())
    console.print(f"forgot {email}" if found else f"no subscriber {email}; suppressed the address anyway")
