"""`newsletter feeds ...`: declare, pull and inspect the hub's feeds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli.common import JsonOpt, SiteOpt, console, err_console, load_site, print_json
from newsletter.errors import InputError

feeds_app = typer.Typer(help="Hub feeds (RSS/Atom): declare, pull, inspect.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.add_typer(feeds_app, name="feeds")


@feeds_app.command("add")
def feeds_add(
    name: Annotated[str, typer.Argument(help="Feed name: lowercase letters, digits, dashes.")],
    url: Annotated[str, typer.Argument(help="http(s):// URL, file:// URL, or a path relative to the site.")],
    language: Annotated[
        str | None, typer.Option("--language", help="Language of every item (default: from the feed).")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Keep only items in this category (repeatable).")
    ] = None,
    site: SiteOpt = ".",  # type: ignore[assignment]
) -> None:
    """Declare a feed in the site's newsletter.toml."""
    from newsletter.feeds.config import add_feed, local_path

    loaded = load_site(site, sync=False)
    feed = add_feed(loaded, name, url, language=language, categories=tuple(category or ()))
    path = local_path(feed.url, loaded.root)
    if path is not None and not path.is_file():
        err_console.print(
            f"[yellow]warning:[/] no file at {path} yet; pulls fail until it exists", highlight=False
        )
    console.print(
        f"added feed {feed.name} ({feed.url}, language {feed.language or 'from the feed'}); "
        f"its first pull marks what it already holds as seen",
        highlight=False,
    )


@feeds_app.command("remove")
def feeds_remove(name: Annotated[str, typer.Argument(help="Feed name.")], site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Remove a feed from newsletter.toml and forget its items."""
    from newsletter.feeds.config import remove_feed
    from newsletter.feeds.store import delete_feed

    loaded = load_site(site, sync=False)
    remove_feed(loaded, name)
    with loaded.store.write() as conn:
        delete_feed(conn, name)
    console.print(f"removed feed {name}", highlight=False)


@feeds_app.command("pull")
def feeds_pull(
    feed: Annotated[list[str] | None, typer.Option("--feed", help="Only this feed (repeatable).")] = None,
    backfill: Annotated[
        bool, typer.Option("--backfill", help="At a feed's first pull, offer what it holds as new too.")
    ] = False,
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """Fetch the feeds now and store new and changed items."""
    from newsletter.feeds.pull import pull_feeds

    results = pull_feeds(load_site(site, sync=False), names=feed or None, backfill=backfill)
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        table = Table("feed", "status", "new", "updated", "unchanged", "seeded", "error / warning")
        for r in results:
            table.add_row(
                r.name,
                r.status,
                str(r.new),
                str(r.updated),
                str(r.unchanged),
                str(r.seeded),
                r.error or r.warning or "",
            )
        console.print(table)
    failed = [r for r in results if r.status in ("error", "gone", "invalid")]
    for r in failed if not as_json else []:
        err_console.print(f"[yellow]warning:[/] feed {r.name}: {r.error}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


@feeds_app.command("list")
def feeds_list(site: SiteOpt = ".", as_json: JsonOpt = False) -> None:  # type: ignore[assignment]
    """Declared feeds: status, last success, last error, item counts."""
    from newsletter.feeds.config import load_feeds
    from newsletter.feeds.query import feed_overview

    loaded = load_site(site, sync=False)
    config = load_feeds(loaded)
    with loaded.store.read() as conn:
        overview = feed_overview(conn, config.feeds)
    if as_json:
        print_json({"feeds": overview, "errors": config.errors})
        return
    for error in config.errors:
        err_console.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
    table = Table("feed", "language", "status", "items", "new", "last success", "last error")
    for f in overview:
        error = f"{f['last_error_at'][:16]} {f['last_error']}" if f["last_error"] else ""
        table.add_row(
            f["name"],
            f["language"] or "from feed",
            f["status"],
            str(f["items"]),
            str(f["new_items"]),
            (f["last_success_at"] or "")[:16],
            error,
        )
    console.print(table)


@feeds_app.command("items")
def feeds_items(
    feed: Annotated[str | None, typer.Option("--feed", help="Only this feed.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only items first seen after this date (YYYY-MM-DD[THH:MM], UTC)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many items.")] = 50,
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """Stored items, newest first (JSON carries each item's sanitised HTML as content_html)."""
    from newsletter.feeds.query import list_items

    loaded = load_site(site, sync=False)
    with loaded.store.read() as conn:
        found = list_items(conn, feed=feed, since=_date(since), limit=limit)
    if as_json:
        print_json([{**item.as_dict(), "seeded": seeded} for item, seeded in found])
        return
    table = Table("published", "feed", "lang", "title", "seen first", "")
    for item, seeded in found:
        published = item.published_at.strftime("%Y-%m-%d") if item.published_at else ""
        seen = item.first_seen_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(
            published, item.feed, item.language or "", item.title, seen, "seeded" if seeded else "new"
        )
    console.print(table)


def _date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"--since {value!r}: expected a date such as 2021-06-01 or 2021-06-01T09:00"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
