"""Commands of the schedule stage: plan, run, and pause/resume/cancel of one occurrence."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from newsletter.cli.common import JsonOpt, SiteOpt, audit, console, err_console, load_site, print_json
from newsletter.errors import InputError

schedule_app = typer.Typer(
    help="Act on planned sends (keys and ids from `newsletter plan`).", no_args_is_help=True
)
Occurrence = Annotated[str, typer.Argument(help="Occurrence key (e.g. hlm-7d/hlm-2021) or id.")]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("plan")(plan)
    app.command("run")(run)
    app.add_typer(schedule_app, name="schedule")


def _parse_now(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--now {value!r}: expected ISO 8601 such as 2021-04-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise InputError(f"--now {value!r}: add a timezone, e.g. 2021-04-01T00:00:00Z")
    return parsed.astimezone(UTC)


def plan(
    site: SiteOpt = ".",  # type: ignore[assignment]
    now: Annotated[
        str | None, typer.Option("--now", help="Plan as if it were this moment (ISO 8601).")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="How many days ahead.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Every upcoming send: when (UTC and local), campaign, event/session, languages, audience, why."""
    from newsletter.schedule.sync import plan_for_site

    at = _parse_now(now)
    sends = plan_for_site(load_site(site), at, days=days)
    if as_json:
        print_json({"now": at.isoformat(), "days": days, "sends": [s.as_dict() for s in sends]})
        return
    table = Table(
        "when (UTC)", "local time", "campaign", "event / session", "lang", "audience", "status", "why"
    )
    for s in sends:
        table.add_row(
            f"{s.due:%Y-%m-%d %H:%M}",
            f"{s.local:%a %d %b %H:%M} {s.timezone}",
            s.campaign,
            "/".join(p for p in (s.event, s.session) if p) or "-",
            ",".join(s.languages),
            str(s.audience),
            s.status,
            s.trigger
            + (f" — to those {s.segment}" if s.segment else "")
            + (f" — {s.reason}" if s.reason else ""),
        )
    console.print(table)
    console.print(f"{len(sends)} send(s) from {at:%Y-%m-%d %H:%M} UTC over {days} day(s)")


def run(
    site: SiteOpt = ".",  # type: ignore[assignment]
    for_seconds: Annotated[
        float | None, typer.Option("--for", help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """The main job: scheduler, send worker, web app and feed pulls, until Ctrl-C or SIGTERM."""
    from newsletter.service import run as run_service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # APScheduler logs every run of the file watch at INFO; its warnings and errors still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    loaded = load_site(site)
    _hint_first_user(loaded)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        err_console.print(f"{signal.Signals(signum).name}: stopping (finishing what is in flight)")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    run_service(
        loaded,
        stop,
        for_seconds=for_seconds,
        on_wait=lambda: err_console.print("another scheduler holds this database: waiting as standby"),
        on_ready=lambda parts: err_console.print(f"running: {parts}"),
    )
    err_console.print("stopped")


def _hint_first_user(site: Any) -> None:
    """On a fresh site nobody can log in to the dashboard yet: say how to fix that."""
    from newsletter.accounts import list_users

    if not list_users(site.store):
        url = f"http://{site.settings['host']}:{site.settings['port']}/admin"
        err_console.print(
            f"no dashboard user yet: {url} asks for a login; add one with"
            f" `newsletter users add --site {site.root}` (it asks for the email, role and password)",
            highlight=False,
            soft_wrap=True,
        )


def _act(action: str, site: Any, occurrence: str) -> None:
    from newsletter.schedule import occurrences
    from newsletter.schedule.sync import reconcile

    loaded = load_site(site, sync=False)
    try:
        occurrences.get(loaded.store, occurrence)
    except InputError:
        # A key `plan` shows but no scheduler has stored yet: store the plan (as `run` would), retry.
        reconcile(loaded, datetime.now(UTC))
    row = getattr(occurrences, action)(loaded.store, occurrence)
    audit(loaded, action, row.key, {"occurrence": row.id, "status": row.status})
    console.print(f"{row.key} (id {row.id}): {row.status}", highlight=False)


@schedule_app.command("pause")
def pause(occurrence: Occurrence, site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Hold a scheduled send until resumed."""
    _act("pause", site, occurrence)


@schedule_app.command("resume")
def resume(occurrence: Occurrence, site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Let a paused send go (at once if overdue and still inside its late_by window)."""
    _act("resume", site, occurrence)


@schedule_app.command("cancel")
def cancel(occurrence: Occurrence, site: SiteOpt = ".") -> None:  # type: ignore[assignment]
    """Cancel a scheduled or paused send for good."""
    _act("cancel", site, occurrence)
