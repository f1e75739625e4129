"""`newsletter registrants import EVENT[/SESSION] FILE.csv`: a webinar platform's registration export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.audience.registrants import decode, parse_registrants, store_registrants
from newsletter.cli.common import JsonOpt, SiteOpt, console, err_console, load_site, print_json
from newsletter.errors import InputError
from newsletter.store import now_utc

registrants_app = typer.Typer(help="Webinar registrants: who gets the join reminders.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(registrants_app, name="registrants")


@registrants_app.command("import")
def registrants_import(
    target: Annotated[str, typer.Argument(help="The event id, or event/session (e.g. webinar-april/fr).")],
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV export: Email, First Name, Last Name, Registration Time, Approval Status, language."
        ),
    ],
    site: SiteOpt = ".",  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """Store the registrants of an event or session, in one transaction; bad rows are reported."""
    from newsletter.schedule.config import load_schedules

    the_site = load_site(site)
    event_id, _, session_id = target.partition("/")
    event = load_schedules(the_site).events.get(event_id)
    if event is None:
        raise InputError(f"{target}: no event {event_id!r} in {the_site.schedules_file}")
    session = event.session(session_id) if session_id else None
    if session_id and session is None:
        known = ", ".join(s.id for s in event.sessions) or "none"
        raise InputError(f"{target}: event {event_id!r} has no session {session_id!r} (sessions: {known})")
    if not file.is_file():
        raise InputError(f"{file}: no such file")
    try:
        parsed = parse_registrants(decode(file.read_bytes()), the_site.languages)
    except InputError as exc:
        raise InputError(f"{file}: {exc}") from None
    report = store_registrants(
        the_site.store,
        parsed,
        event_id=event_id,
        session_id=session_id,
        default_language=session.language if session else the_site.default_language,
        source=file.name,
        now=now_utc(),
    )
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"{file} -> {target}: {report.registered} registered ({report.new_people} not subscribers: "
        f"this event's reminders only), {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.rejected)} rejected",
        highlight=False,
    )
    for r in report.rejected:
        err_console.print(f"  {file}:{r.line}: {r.reason}", highlight=False, soft_wrap=True)
