"""Commands of the web stage: `newsletter serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import SiteOpt, load_site


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    from newsletter.cli.render import i18n_app

    i18n_app.command("web")(web_catalogs)

    @app.command()
    def serve(
        site: SiteOpt = Path("."),
        host: Annotated[str | None, typer.Option("--host", help="Interface (default: setting host).")] = None,
        port: Annotated[int | None, typer.Option("--port", help="Port (default: setting port).")] = None,
    ) -> None:
        """Serve the public pages, tracking routes, the SendGrid webhook and the dashboard."""
        from newsletter.web.app import serve as run_server

        run_server(load_site(site), host, port)


def web_catalogs() -> None:
    """Extract the web pages' and dashboard's strings and merge them into web/locale/*/web.po."""
    from datetime import UTC, datetime

    from newsletter.cli.common import console
    from newsletter.web import catalog

    for path in catalog.update(datetime.now(UTC)):
        gaps = catalog.gaps(path.parent.parent.name)
        console.print(f"updated {path}: {len(gaps.missing)} untranslated", highlight=False)
