"""`newsletter content status|stamp`: the texts of composed campaigns (content/<campaign>/<lang>.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import JsonOpt, SiteOpt, console, load_site, print_json
from newsletter.errors import InputError

content_app = typer.Typer(help="Composed campaigns' texts: translation status, marking a translation done.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(content_app, name="content")


@content_app.command("status")
def status(
    campaign: Annotated[str | None, typer.Argument(help="One composed campaign (default: all).")] = None,
    site: SiteOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Per composed campaign and language: source, translated, outdated or missing."""
    from newsletter.schedule.load import load_schedules

    loaded = load_site(site, sync=False)
    composed = {c.id: c for c in load_schedules(loaded).campaigns.values() if c.content is not None}
    if campaign is not None and campaign not in composed:
        raise InputError(
            f"no composed campaign {campaign!r}; composed campaigns: {', '.join(composed) or 'none'}"
        )
    chosen = [composed[campaign]] if campaign else list(composed.values())
    rows = {c.id: c.content.statuses(c.languages) for c in chosen if c.content is not None}
    if as_json:
        print_json(rows)
        return
    table = Table("campaign", *loaded.languages)
    for ident, statuses in rows.items():
        table.add_row(ident, *(statuses.get(lang, "-") for lang in loaded.languages))
    console.print(table)


@content_app.command("stamp")
def stamp(
    campaign: Annotated[str, typer.Argument(help="A composed campaign of schedules.yaml.")],
    lang: Annotated[
        list[str], typer.Option("--lang", help="The translation brought up to date (repeatable).")
    ],
    site: SiteOpt = Path("."),
) -> None:
    """Record that LANG's text now translates the current source (writes its source_hash)."""
    from newsletter.campaign_content import format_text
    from newsletter.campaign_content import stamp as stamp_text
    from newsletter.schedule.load import load_schedules

    loaded = load_site(site, sync=False)
    found = load_schedules(loaded).campaigns.get(campaign)
    if found is None or found.content is None:
        raise InputError(f"{campaign!r} is not a campaign with content: in schedules.yaml")
    content = found.content
    source = content.texts[content.source]
    for language in lang:
        text = content.texts.get(language)
        if text is None or language == content.source:
            raise InputError(
                f"--lang {language}: no translation content/{content.name}/{language}.md to stamp"
            )
        Path(text.where).write_text(format_text(stamp_text(text, source)), encoding="utf-8")
        console.print(f"{text.where}: translates {content.source} {source.hash}", highlight=False)
