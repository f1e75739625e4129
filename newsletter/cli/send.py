"""Commands of the send stage: `newsletter send` (now, a test copy, or a dry run) and `newsletter worker`."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from newsletter.cli.common import JsonOpt, SiteOpt, audit, console, err_console, load_site, print_json
from newsletter.store import now_utc

PROGRESS_FROM = 1000  # recipients: below this a bar only flickers


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("send")(send)
    app.command("worker")(worker)
    app.command("in-doubt")(in_doubt)
    app.command("resume-send")(resume_send)


def send(
    campaign: Annotated[str, typer.Argument(help="Campaign id from schedules.yaml.")],
    site: SiteOpt = ".",  # type: ignore[assignment]
    event: Annotated[str | None, typer.Option("--event", help="Event the campaign is about.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and count; send nothing.")] = False,
    test: Annotated[str | None, typer.Option("--test", help="Send one test copy to this address.")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Language of the test copy.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send a digest marked only_if_new_items even with nothing new.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send a campaign now, a test copy of it, or (--dry-run) show what would go."""
    from newsletter.render.assemble import language_plans
    from newsletter.schedule.load import load_schedules

    loaded = load_site(site)
    schedules = load_schedules(loaded)
    now = now_utc()
    if dry_run:
        plans = language_plans(loaded, schedules, campaign, now, event)
        if as_json:
            print_json([p.__dict__ for p in plans])
            return
        table = Table("lang", "recipients", "subject", "HTML bytes")
        for p in plans:
            table.add_row(p.language, str(p.recipients), p.subject or f"[red]{p.error}[/]", str(p.html_bytes))
        console.print(table)
        console.print(f"dry run: {sum(p.recipients for p in plans)} recipient(s); nothing sent")
        return
    if test:
        _send_test(loaded, schedules, campaign, test, lang, event, now, as_json)
        return
    if not force and (reason := _nothing_new(loaded, schedules, campaign, now)):
        if as_json:
            print_json({"campaign": campaign, "sent": 0, "skipped": reason})
        else:
            console.print(f"{campaign}: not sent, {reason} (--force sends it anyway)")
        return
    _send_now(loaded, schedules, campaign, event, now, as_json)


def _nothing_new(site: Any, schedules: Any, campaign_id: str, now: Any) -> str | None:
    """Why a digest marked only_if_new_items would be empty now, as the scheduler decides; else None."""
    from newsletter.schedule.inputs import new_items_for

    campaign = schedules.campaigns.get(campaign_id)
    if campaign is None or not campaign.trigger.only_if_new_items:
        return None
    count, since = new_items_for(site.store, campaign, now)
    return None if count else f"no new items since {since:%Y-%m-%d %H:%M} UTC"


def _send_test(
    site: Any,
    schedules: Any,
    campaign: str,
    email: str,
    lang: str | None,
    event: str | None,
    now: Any,
    as_json: bool,
) -> None:
    from newsletter.audience.subscribers import normalize_email
    from newsletter.render.assemble import prepare_campaign
    from newsletter.render.message import Recipient
    from newsletter.send import transport_name
    from newsletter.send.engine import send_single

    language = site.check_language(lang or site.default_language, "--lang")
    address = normalize_email(email)
    prepared, _ = prepare_campaign(site, schedules, campaign, language, now, event_id=event)
    prepared = replace(prepared, subject=f"[TEST] {prepared.subject}")
    message_id = send_single(site, prepared, Recipient(0, address, "", language))
    result = {
        "to": address,
        "language": language,
        "transport": transport_name(site.settings),
        "id": message_id,
    }
    audit(site, "test-send", campaign, {**result, "event": event})
    if as_json:
        print_json(result)
    else:
        console.print(f"test copy ({language}) sent to {address} through {result['transport']}: {message_id}")


def _send_now(site: Any, schedules: Any, campaign: str, event: str | None, now: Any, as_json: bool) -> None:
    from newsletter.schedule.occurrences import create_adhoc
    from newsletter.send.engine import send_occurrence

    occurrence_id = create_adhoc(site.store, schedules, campaign, event_id=event, now=now)
    audit(site, "send", campaign, {"occurrence": occurrence_id, "event": event})
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("send", total=None)

        def progress(done: int, total: int) -> None:
            if total >= PROGRESS_FROM:
                bar.update(task, completed=done, total=total)

        tally = send_occurrence(site, occurrence_id, now, schedules, progress=progress)
    from newsletter.send.ledger import counts

    summary = {"occurrence": occurrence_id, "campaign": campaign, **counts(site.store, occurrence_id)}
    summary["errors"] = tally.errors[:10]
    if as_json:
        print_json(summary)
        return
    states = ", ".join(f"{n} {status}" for status, n in sorted(counts(site.store, occurrence_id).items()))
    console.print(f"occurrence {occurrence_id} ({campaign}): {states or 'no recipients'}")
    for error in tally.errors[:10]:
        err_console.print(f"[yellow]warning:[/] {error}", highlight=False, soft_wrap=True)


def worker(
    site: SiteOpt = ".",  # type: ignore[assignment]
    once: Annotated[bool, typer.Option("--once", help="Send what is due, then exit.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Worker name shown in the ledger.")] = None,
) -> None:
    """Drain the send ledger until Ctrl-C or SIGTERM (several workers may share a PostgreSQL store)."""
    from newsletter.send.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    loaded = load_site(site)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    tally = run_worker(loaded, stop, worker_id=name, once=once)
    err_console.print(
        f"worker stopped: {tally.sent} sent, {tally.failed} failed, {tally.in_doubt} in doubt, "
        f"{tally.suppressed} suppressed, {tally.requeued} requeued",
        highlight=False,
    )


def in_doubt(
    site: SiteOpt = ".",  # type: ignore[assignment]
    batch: Annotated[int | None, typer.Option("--batch", help="Batch id to decide on.")] = None,
    decide: Annotated[
        str | None, typer.Option("--decide", help="sent (it went), resend, or failed (drop it).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List batches in doubt (sent or not?), or record an operator's decision on one."""
    from newsletter.errors import InputError
    from newsletter.send import ledger

    loaded = load_site(site)
    if decide is not None or batch is not None:
        if decide is None or batch is None:
            raise InputError("give both --batch ID and --decide sent|resend|failed")
        changed = ledger.decide_in_doubt(loaded.store, batch, decide, by="cli")
        audit(loaded, "in-doubt", f"batch {batch}", {"decision": decide, "messages": changed})
        console.print(f"batch {batch}: {changed} message(s) marked {decide}")
        return
    rows = ledger.list_in_doubt(loaded.store)
    if as_json:
        print_json(rows)
        return
    table = Table("batch", "occurrence", "lang", "transport", "messages", "provider id", "why")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["occurrence_id"]),
            r["language"],
            r["transport"],
            str(r["messages"]),
            r["provider_id"] or "-",
            r["error"] or "",
        )
    console.print(table)


def resume_send(
    occurrence: Annotated[
        int, typer.Argument(help="Occurrence id (from the pause message or `newsletter plan`).")
    ],
    site: SiteOpt = ".",  # type: ignore[assignment]
) -> None:
    """Let a send paused on refused credentials go on where it stopped (workers pick it up)."""
    from newsletter.errors import InputError
    from newsletter.send import ledger

    loaded = load_site(site)
    if not ledger.resume_occurrence(loaded.store, occurrence, now_utc()):
        raise InputError(f"occurrence {occurrence} is not a paused send (see `newsletter plan`)")
    audit(loaded, "resume-send", f"occurrence {occurrence}", {"occurrence": occurrence})
    console.print(f"occurrence {occurrence} resumed; `newsletter worker` sends the rest")
