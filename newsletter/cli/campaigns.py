"""`newsletter campaigns list|export`: campaigns composed in the dashboard, kept in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import JsonOpt, SiteOpt, console, load_site, print_json
from newsletter.errors import InputError

campaigns_app = typer.Typer(
    help="Campaigns composed in the dashboard (stored as revisions).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(campaigns_app, name="campaigns")


@campaigns_app.command("list")
def list_(site: SiteOpt = Path("."), as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Every composed campaign: latest revision, whether it is scheduled, who saved it last and when."""
    from newsletter.schedule.stored import summaries

    rows = summaries(load_site(site).store)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "template", "revision", "latest", "live", "languages", "saved by", "saved at (UTC)")
    for r in rows:
        table.add_row(
            r["id"],
            r["template"],
            str(r["revision"]),
            r["status"],
            r["live"],
            ", ".join(r["languages"]),
            r["saved_by"],
            f"{r['saved_at']:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@campaigns_app.command("export")
def export(
    campaign: Annotated[str, typer.Argument(help="A composed campaign's id.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write <id>.yaml and content/<id>/ into.")],
    site: SiteOpt = Path("."),
) -> None:
    """Write the campaign's schedules.yaml entry and its content/<id>/<lang>.md files (latest revision)."""
    import yaml

    from newsletter.campaign_content import format_text
    from newsletter.schedule.stored import latest

    loaded = load_site(site)
    revision = latest(loaded.store, campaign)
    if revision is None:
        raise InputError(f"no composed campaign {campaign!r} (newsletter campaigns list)")
    folder = out / "content" / campaign
    folder.mkdir(parents=True, exist_ok=True)
    content = revision.content(loaded.default_language)
    for text in content.texts.values():
        (folder / f"{text.language}.md").write_text(format_text(text), encoding="utf-8")
    entry = {"id": campaign, "content": campaign, **revision.entry}
    header = (
        f"# {campaign}, revision {revision.revision} ({revision.status}), saved by {revision.saved_by} at "
        f"{revision.saved_at:%Y-%m-%d %H:%M} UTC.\n# Paste under campaigns: in schedules.yaml, with "
        f"content/{campaign}/ beside it (then delete it from the dashboard: ids are unique).\n"
    )
    body = yaml.safe_dump({"campaigns": [entry]}, allow_unicode=True, sort_keys=False, width=100)
    (out / f"{campaign}.yaml").write_text(header + body, encoding="utf-8")
    console.print(
        f"wrote {out / f'{campaign}.yaml'} and {len(content.texts)} file(s) in {folder}", highlight=False
    )
