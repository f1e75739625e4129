"""`newsletter stats ...` (campaign figures, sign-on comparison) and `newsletter users ...` (dashboard)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from newsletter import accounts
from newsletter.cli.common import JsonOpt, SiteOpt, audit, console, load_site, print_json
from newsletter.errors import InputError
from newsletter.report import compare as comparison
from newsletter.report import figures, rollup

users_app = typer.Typer(
    help="Dashboard users (staff schedule and send, organisers read reports).", no_args_is_help=True
)

ROWS = [
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("bounced", "bounced"),
    ("dropped", "dropped"),
    ("unique opens (human)", "opens"),
    ("unique opens incl. machine", "opens_all"),
    ("unique clicks (human)", "clicks"),
    ("clicks (raw)", "clicks_raw"),
    ("click rate", "click_rate"),
    ("click-to-open", "click_to_open"),
    ("sign-on click-throughs", "sign_on"),
    ("sign-ons completed", "conversions"),
    ("unsubscribes", "unsubscribes"),
    ("spam reports", "spam_reports"),
]


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
    app.add_typer(users_app, name="users")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    return f"{value:,}"


def stats(
    campaign: Annotated[
        str | None, typer.Argument(help="Occurrence id, occurrence key or campaign name.")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Sign-on click-throughs across campaigns.")
    ] = False,
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """A campaign's figures (all its occurrences, or one); --compare: sign-on click-throughs by campaign."""
    if not compare and not campaign:
        raise InputError("give a CAMPAIGN (occurrence id, key or campaign name), or --compare")
    store = load_site(site).store
    rollup.refresh_all(store)
    if compare:
        _print_compare(comparison.compare(store), as_json)
        return
    assert campaign is not None
    report = figures.campaign_report(store, figures.resolve(store, campaign))
    if as_json:
        print_json(report.as_dict())
        return
    langs = list(report.languages)
    table = Table("", "all", *langs, title=f"{report.title}: {len(report.occurrences)} occurrence(s)")
    data = [report.total.as_dict()] + [report.languages[lang].as_dict() for lang in langs]
    for label, key in ROWS:
        table.add_row(label, *[_cell(d[key]) for d in data], style="bold" if key == "sign_on" else None)
    console.print(table)
    if report.links:
        links = Table("language", "label", "url", "clicks (human)", "raw", "sign-ons", title="links")
        for link in report.links:
            links.add_row(
                link.language,
                link.label,
                link.url,
                _cell(link.clicks),
                _cell(link.clicks_raw),
                _cell(link.conversions) if link.sign_on else "",
            )
        console.print(links)


def _print_compare(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    langs = data["languages"]
    table = Table("campaign", "sent on", *langs, "all", title="sign-on click-throughs (unique, human)")
    for row in data["occurrences"]:
        cells = []
        for lang in langs:
            c = row["languages"][lang]
            cells.append(
                f"{c['sign_on']:,}" + (f" ({c['rate'] * 100:.1f}%)" if c["rate"] is not None else "")
            )
        table.add_row(row["campaign"], row["due_at"][:16], *cells, f"{row['sign_on']:,}")
    console.print(table)


@users_app.command("add")
def users_add(
    email: Annotated[
        str | None, typer.Argument(help="The person's email, their login (asked for when left out).")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role", help="staff (schedule and send) or organiser (reports); asked for when left out."
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    site: SiteOpt = ".",  # type: ignore[assignment]
) -> None:
    """Create a dashboard user (or reset their role and password); asks for what is left out."""
    loaded = load_site(site)
    store = loaded.store
    if email is None:
        email = typer.prompt("Email")
    if role is None:
        # The first user must be able to do everything, so staff; after that the safer default.
        first = not accounts.list_users(store)
        role = typer.prompt("Role (staff or organiser)", default="staff" if first else "organiser")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = accounts.add_user(loaded.store, email, role, password)
    audit(loaded, "user-add", user.email, {"role": user.role})
    console.print(f"user {user.email} ({user.role}) saved")


@users_app.command("list")
def users_list(site: SiteOpt = ".", as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Dashboard users and their roles."""
    found = accounts.list_users(load_site(site).store)
    if as_json:
        print_json([{"email": u.email, "role": u.role} for u in found])
        return
    for u in found:
        console.print(f"{u.email}\t{u.role}")
