"""Commands of the render stage: `preview`, and `i18n extract|update|compile`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import JsonOpt, SiteOpt, console, load_site, print_json

i18n_app = typer.Typer(help="Translation catalogs (Babel): extract, update, compile.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("preview")(preview)
    app.add_typer(i18n_app, name="i18n")


def preview(
    campaign: Annotated[str, typer.Argument(help="A campaign of schedules.yaml, or a template name.")],
    lang: Annotated[list[str] | None, typer.Option("--lang", help="Language (repeatable).")] = None,
    all_langs: Annotated[bool, typer.Option("--all-langs", help="Every language (the default).")] = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for the .html/.txt/.eml files.")] = Path(
        "preview"
    ),
    site: SiteOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Render CAMPAIGN per language into OUT as .html, .txt and .eml (real data when there is some)."""
    from newsletter.render.prepare import check_language
    from newsletter.render.preview import preview as write_previews
    from newsletter.schedule.load import load_schedules

    loaded = load_site(site)
    languages = None if all_langs or not lang else [check_language(loaded, x) for x in lang]
    files = write_previews(loaded, load_schedules(loaded), campaign, languages, out, datetime.now(UTC))
    if as_json:
        print_json(
            [
                {"language": f.language, "data": f.data, "translation": f.translation or None}
                | {"files": [str(p) for p in f.paths]}
                for f in files
            ]
        )
        return
    for f in files:
        status = f", text {f.translation}" if f.translation else ""
        console.print(
            f"{f.language}: {', '.join(str(p) for p in f.paths)} ({f.data} data{status})", highlight=False
        )


@i18n_app.command("extract")
def extract(site: SiteOpt = Path(".")) -> None:  # type: ignore[assignment]
    """Collect the templates' translatable strings into templates/locale/messages.pot."""
    from newsletter.render import catalogs
    from newsletter.site import Site

    loaded = Site.load(site)
    catalog = catalogs.extract(loaded.templates_dir, datetime.now(UTC))
    console.print(f"{catalogs.pot_path(loaded.templates_dir)}: {len(catalog)} strings", highlight=False)


@i18n_app.command("update")
def update(site: SiteOpt = Path(".")) -> None:  # type: ignore[assignment]
    """Merge messages.pot into every language's messages.po (new strings appear untranslated)."""
    from newsletter.render import catalogs
    from newsletter.site import Site

    loaded = Site.load(site)
    for path in catalogs.update(loaded.templates_dir, list(loaded.languages), datetime.now(UTC)):
        console.print(f"updated {path}", highlight=False)


@i18n_app.command("compile")
def compile_(site: SiteOpt = Path(".")) -> None:  # type: ignore[assignment]
    """Compile every messages.po into messages.mo (also done automatically when a .mo is stale)."""
    from newsletter.render import catalogs
    from newsletter.site import Site

    loaded = Site.load(site)
    for path in catalogs.compile_all(loaded.templates_dir, list(loaded.languages)):
        console.print(f"compiled {path}", highlight=False)
