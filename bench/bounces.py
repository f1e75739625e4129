"""Benchmark of SMTP sending through the real local Postfix, and of bounce processing.

    .venv/bin/python bench/bounces.py [--messages 2000] [--dsns 10000] [--runs 3]   (0: skip that part)

Needs the loopback Postfix of `.ci/mailserver.sh` (run it as root first); `sink*@newsletter.test`
is accepted and discarded there, so delivery does not weigh on the figures.
1. SMTP: the project's SMTPTransport handing --messages digest messages (one connection, one message
   per recipient, VERP envelope sender) to Postfix, against Postfix's own load generator
   `smtp-source` sending the same message file the same number of times over one connection
   (`-s 1 -d -F`), alternated in the same run: messages/s each and the ratio; then 4 connections at
   once (a thread and a transport each, as `smtp_connections = 4` does) against `smtp-source -s 4`.
2. Bounces: --dsns Postfix-style DSNs (VERP addressed, the returned headers inside) for as many sends
   of a real ledger on SQLite, each parsed, matched to its send, stored as an event and applied
   (the address suppressed), one transaction per chunk of 50 as `bounces pull` does; against the floor of
   parsing the same bytes with the standard library's `email.message_from_bytes` alone.
Medians of --runs runs.
"""

from __future__ import annotations

import argparse
import email
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from newsletter.render.message import Prepared, Recipient  # noqa: E402
from newsletter.send.bounce_policy import Policy  # noqa: E402
from newsletter.send.transports.smtp import SMTPTransport  # noqa: E402
from newsletter.send.verp import envelope_sender  # noqa: E402
from newsletter.tokens import Signer  # noqa: E402

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)
INFO = Path("/etc/newsletter-test/mailserver.json")
SECRET = "bench-secret-key-0123456789"
BOUNCES = "bounces@newsletter.test"


def prepared() -> Prepared:
    """A digest-sized message: about 20 kB of HTML and its text part."""
    item = (
        '<tr><td style="padding:12px;font-family:Arial"><h2><a href="https://hub.example.org/n/{i}">'
        "Civil society statement {i} on the political declaration</a></h2><p>{body}</p></td></tr>"
    )
    body = "Community-led responses remain underfunded; the hub collects statements and events. " * 3
    html = "<table>" + "".join(item.format(i=i, body=body) for i in range(40)) + "</table>"
    text = "\n\n".join(f"Civil society statement {i}\n{body}" for i in range(40))
    return Prepared(
        language="en",
        subject="Weekly digest",
        preheader="",
        from_name="HLM Hub",
        from_email="news@newsletter.test",
        html=html,
        text=text,
        links=[],
        campaign_id="weekly-digest",
        occurrence_id=1,
        base_url="http://127.0.0.1:8000",
        signer=Signer(SECRET),
        now=NOW,
    )


def ours(info: dict[str, Any], message: Prepared, n: int) -> float:
    transport = SMTPTransport(
        info["smtp_host"], info["smtp_port"], starttls=False, bounce_address=BOUNCES, timeout=60
    )
    recipients = [Recipient(i + 1, f"sink-{i}@newsletter.test", "", "en", i + 1, "UTC") for i in range(n)]
    start = time.perf_counter()
    try:
        result = transport.send_batch(message, recipients)
    finally:
        transport.close()
    elapsed = time.perf_counter() - start
    assert len(result.message_ids) == n and transport.connections == 1, result.failed
    return n / elapsed


def ours_parallel(info: dict[str, Any], message: Prepared, n: int, connections: int) -> float:
    """`connections` transports at once, a thread each, as `smtp_connections` makes the engine do."""
    import threading

    share = n // connections

    def one(index: int) -> None:
        transport = SMTPTransport(
            info["smtp_host"], info["smtp_port"], starttls=False, bounce_address=BOUNCES, timeout=60
        )
        recipients = [
            Recipient(index * share + i + 1, f"sink-{i}@newsletter.test", "", "en", 1, "UTC")
            for i in range(share)
        ]
        try:
            assert len(transport.send_batch(message, recipients).message_ids) == share
        finally:
            transport.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return share * connections / (time.perf_counter() - start)


def smtp_source(info: dict[str, Any], path: Path, n: int, sessions: int = 1) -> float:
    command = [
        info["smtp_source"], "-s", str(sessions), "-d", "-m", str(n), "-F", str(path),
        "-f", BOUNCES, "-t", "sink-source@newsletter.test", f"{info['smtp_host']}:{info['smtp_port']}",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return n / (time.perf_counter() - start)


def bench_smtp(n: int, runs: int) -> dict[str, float]:
    info = json.loads(INFO.read_text())
    message = prepared()
    raw = message.mime(Recipient(1, "sink-source@newsletter.test", "", "en", 1, "UTC"), NOW)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "message.eml"
        path.write_bytes(raw.replace(b"\r\n", b"\n"))  # smtp-source appends CRLF to each line
        ours_runs, source_runs, parallel_runs, ours_parallel_runs = [], [], [], []
        for _ in range(runs):
            ours_runs.append(ours(info, message, n))
            source_runs.append(smtp_source(info, path, n))
            ours_parallel_runs.append(ours_parallel(info, message, n, 4))
            parallel_runs.append(smtp_source(info, path, n, sessions=4))
    return {
        "message_bytes": len(raw),
        "ours_per_s": statistics.median(ours_runs),
        "smtp_source_per_s": statistics.median(source_runs),
        "smtp_source_4_sessions_per_s": statistics.median(parallel_runs),
        "ours_4_connections_per_s": statistics.median(ours_parallel_runs),
    }


# ---------------------------------------------------------------- bounces


DSN = (
    "Return-Path: <>\r\nDelivered-To: {verp}\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\nTo: {verp}\r\nAuto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\nMessage-Id: <dsn-{i}@mx.example.net>\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B{i}"\r\n\r\n'
    "--B{i}\r\nContent-Type: text/plain\r\n\r\n<{email}>: host mx.example.net said: 550 5.1.1 unknown\r\n"
    "\r\n"
    "--B{i}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
    "Final-Recipient: rfc822; {email}\r\nOriginal-Recipient: rfc822;{email}\r\nAction: failed\r\n"
    "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <{email}>: Recipient address rejected\r\n\r\n"
    "--B{i}\r\nContent-Type: text/rfc822-headers\r\n\r\nReturn-Path: <{verp}>\r\n"
    "From: HLM Hub <news@hub.example.org>\r\nTo: <{email}>\r\nSubject: Weekly digest\r\n"
    "Message-ID: <{send}.1.weekly-digest.en@hub.example.org>\r\n\r\n"
    "--B{i}--\r\n"
)


def bench_bounces(n: int, runs: int) -> dict[str, float]:
    from sqlalchemy import func, select

    from newsletter.audience.lists import sync_lists
    from newsletter.schedule.load import load_schedules
    from newsletter.schedule.occurrences import create_adhoc
    from newsletter.send.engine import enqueue_occurrence
    from newsletter.site import Site
    from newsletter.store.tables import sends, suppressions
    from newsletter.track.bounce_mail import handle_many
    from newsletter.track.mailbox import FETCH_CHUNK

    sys.path.insert(0, str(BENCH.parent / "tests"))
    from tests.conftest import copy_site
    from tests.support.send import add_subscribers

    signer = Signer(SECRET)
    ours_runs, floor_runs = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            site_dir = copy_site(Path(tmp) / "site")
            env = {"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp}/bench.db", "NEWSLETTER_SECRET_KEY": SECRET}
            site = Site.load(site_dir, environ=env)
            sync_lists(site)
            add_subscribers(site.store, n, languages=("en",), now=NOW, prefix="gone")
            occ = create_adhoc(site.store, load_schedules(site), "weekly-digest", now=NOW)
            enqueue_occurrence(site, occ, NOW, load_schedules(site))
            with site.store.read() as conn:
                rows = conn.execute(select(sends.c.id, sends.c.email)).all()
            dsns = [
                DSN.format(
                    i=i, send=r.id, email=r.email, verp=envelope_sender(signer, BOUNCES, r.id)
                ).encode()
                for i, r in enumerate(rows)
            ]
            start = time.perf_counter()
            for raw in dsns:
                email.message_from_bytes(raw)
            floor_runs.append(len(dsns) / (time.perf_counter() - start))
            policy = Policy()
            start = time.perf_counter()
            for at in range(0, len(dsns), FETCH_CHUNK):  # in chunks, as `bounces pull` hands them over
                chunk = dsns[at : at + FETCH_CHUNK]
                done = handle_many(
                    site.store, chunk, signer=signer, bounce_address=BOUNCES, policy=policy, now=NOW
                )
                assert all(o.recognised for o in done), [o.why for o in done]
            ours_runs.append(len(dsns) / (time.perf_counter() - start))
            with site.store.read() as conn:
                assert conn.scalar(select(func.count()).select_from(suppressions)) == len(dsns)
            site.close()
    return {
        "dsns": n,
        "ours_per_s": statistics.median(ours_runs),
        "floor_parse_per_s": statistics.median(floor_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--dsns", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.messages:
        smtp = bench_smtp(args.messages, args.runs)
        print(
            f"SMTP to local Postfix, {args.messages} messages of {smtp['message_bytes']} bytes, "
            f"median of {args.runs}:\n"
            f"  SMTPTransport      {smtp['ours_per_s']:8.0f} messages/s\n"
            f"  smtp-source -s 1   {smtp['smtp_source_per_s']:8.0f} messages/s"
            f"   ratio ours/smtp-source {smtp['ours_per_s'] / smtp['smtp_source_per_s']:.2f}\n"
            f"  4 connections (smtp_connections = 4) {smtp['ours_4_connections_per_s']:8.0f} messages/s\n"
            f"  smtp-source -s 4   {smtp['smtp_source_4_sessions_per_s']:8.0f} messages/s (4 sessions)"
            f"   ratio {smtp['ours_4_connections_per_s'] / smtp['smtp_source_4_sessions_per_s']:.2f}"
        )
    if args.dsns:
        bounces = bench_bounces(args.dsns, args.runs)
        print(
            f"Bounce processing, {args.dsns} DSNs applied on SQLite, median of {args.runs}:\n"
            f"  bounces applied    {bounces['ours_per_s']:8.0f} messages/s\n"
            f"  email.message_from_bytes alone {bounces['floor_parse_per_s']:8.0f} messages/s"
            f"   ratio {bounces['ours_per_s'] / bounces['floor_parse_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
