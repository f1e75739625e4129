"""Benchmark of the send stage: messages handed over per second by each transport, and memory.

    .venv/bin/python bench/send.py [--recipients 100000] [--sizes 10000,100000,1000000]
                                   [--outbox 10000] [--smtp 5000] [--ledger 100000] [--runs 3] [--chunks 4]
                                   [--ledger-sizes 100000,1000000]
                                   [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

On a copy of the example site (SQLite in a temp folder), the digest is prepared once per language
(as bench/render.py does), then recipients are streamed across the five languages and handed to:
1. the SendGrid transport (official client) against a local stand-in answering 202 at once, in its
   own process: requests (1000 recipients each), wall time, messages/s handed over;
2. peak RSS of a fresh process doing (1) for each of --sizes: flat means memory does not grow with
   the number of recipients;
3. the outbox transport (.eml files/s) and SMTP to aiosmtpd in its own process (messages/s, one
   reused connection);
4. the whole ledger on SQLite (and PostgreSQL with --postgres URL): enqueue (rows/s) and drain
   through the SendGrid stand-in (messages/s), against the transport's own hand-over rate measured in
   the same run, interleaved with it (--chunks parts, each drain part just after a baseline part of
   the same size: the machine's speed drifts by the minute), so the ledger should cost less than the
   provider: ratio >= 0.6; with the CPU per message of this process and, on PostgreSQL, of its server
   backends;
5. with --ledger-sizes: peak RSS of a fresh process enqueuing and draining each size on SQLite (flat
   means the drain's memory does not grow with the occurrence).
Every figure comes with its ratio to the bare floor measured in the same run: bench/render.py's
`floor_run`, one HMAC token and a `str.replace` of the same tokens into the same compiled HTML.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import render as render_bench  # noqa: E402  (bench/render.py: the site, recipients, the floor)

from newsletter.render.assemble import tracked  # noqa: E402
from newsletter.render.message import Prepared  # noqa: E402
from newsletter.render.prepare import prepare, sample_context  # noqa: E402
from newsletter.schedule.load import load_schedules  # noqa: E402
from newsletter.send.transports.outbox import OutboxTransport  # noqa: E402
from newsletter.send.transports.sendgrid import SendGridTransport  # noqa: E402
from newsletter.send.transports.smtp import SMTPTransport  # noqa: E402

LANGUAGES = render_bench.LANGUAGES
NOW = render_bench.NOW


# ---------------------------------------------------------------- stand-ins, each in its own process


class _Accept(http.server.BaseHTTPRequestHandler):
    """Answers 202 at once; counts the personalizations (recipients) it was handed, for GET /count."""

    protocol_version = "HTTP/1.1"
    recipients = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = str(_Accept.recipients).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Accept.recipients += body.count(b'"to"')  # one per personalization (a counter, not a parser)
        self.send_response(202)
        self.send_header("X-Message-Id", "bench")
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve_sendgrid() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def serve_smtp() -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    controller.stop()


def start(mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    proc.terminate()
    proc.wait(10)


# ---------------------------------------------------------------- runs


def prepared_digest(site: Any, occurrence: int) -> dict[str, Prepared]:
    return {
        lang: tracked(
            site.store,
            prepare(
                site,
                template="digest",
                language=lang,
                context=sample_context(site, lang, NOW),
                campaign_id="weekly-digest",
                now=NOW,
                occurrence_id=occurrence,
            ),
            NOW,
        )
        for lang in LANGUAGES
    }


def batches(stream: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Per-language batches of `size` from a mixed stream, as the ledger's claims are."""
    pending: dict[str, list[Any]] = {}
    for r in stream:
        batch = pending.setdefault(r.language, [])
        batch.append(r)
        if len(batch) == size:
            yield batch
            pending[r.language] = []
    yield from (b for b in pending.values() if b)


def hand_over(transport: Any, prepared: dict[str, Prepared], n: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches(render_bench.recipients(n), transport.batch_size):
        transport.send_batch(prepared[batch[0].language], batch)
    return time.perf_counter() - start, time.process_time() - cpu


def memory_child(n: int, port: int) -> None:
    """Stream n recipients through SendGrid in this fresh process; print peak RSS in KB."""
    with tempfile.TemporaryDirectory() as tmp:
        site = render_bench.make_site(Path(tmp))
        prepared = prepared_digest(site, render_bench.add_occurrence(site))
        transport = SendGridTransport("SG.bench", f"http://127.0.0.1:{port}", timeout=30)
        hand_over(transport, prepared, n)
        print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        site.close()


def child(*args: object) -> dict[str, Any]:
    """Run this script in a fresh process with `args`; what it printed, as JSON."""
    out = subprocess.run(
        [sys.executable, __file__, *map(str, args)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def ledger_memory_child(n: int, port: int) -> None:
    """Enqueue and drain n recipients on SQLite in this fresh process; print the RSS high-water
    marks after the enqueue and during the drain (sampled every 50 ms), in KB."""
    import threading

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        page = os.sysconf("SC_PAGE_SIZE") // 1024
        while not done.wait(0.05):
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * page
            peak[0] = max(peak[0], rss)

    with tempfile.TemporaryDirectory() as tmp:
        site = render_bench.make_site(Path(tmp))
        occurrence, _ = ledger_occurrence(site, n)
        enqueued = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        from newsletter.send.engine import PreparedCache, drain

        schedules = load_schedules(site)
        transport = SendGridTransport("SG.bench", f"http://127.0.0.1:{port}", timeout=30)
        t = time.perf_counter()
        tally = drain(site, transport, PreparedCache(site, lambda: schedules), worker="bench")
        seconds = time.perf_counter() - t
        done.set()
        watcher.join()
        assert tally.sent == n, tally
        print(json.dumps({"enqueue_kb": enqueued, "drain_kb": peak[0], "seconds": seconds}))
        site.close()


def ledger_occurrence(site: Any, n: int) -> tuple[int, float]:
    """n confirmed members in five languages and an occurrence of the digest to them, enqueued.

    Returns (occurrence id, enqueue seconds).
    """
    from sqlalchemy import select

    from newsletter.schedule.occurrences import create_adhoc
    from newsletter.send.engine import enqueue_occurrence
    from newsletter.store.bulk import insert_many
    from newsletter.store.tables import lists, subscribers, subscriptions

    (site.root / "schedules.yaml").write_text(
        "events: []\ncampaigns:\n  - id: weekly-digest\n    template: digest\n"
        "    audience: {lists: [members]}\n    languages: [en, fr, es, ru, pt]\n"
        "    trigger: {every: monday 09:00 Europe/London}\n",
        encoding="utf-8",
    )
    with site.store.write() as conn:
        list_id = conn.scalar(select(lists.c.id).where(lists.c.slug == "members"))
        for start in range(0, n, 10_000):
            chunk = range(start, min(n, start + 10_000))
            insert_many(
                conn,
                subscribers,
                [
                    {
                        "id": i + 1,
                        "email": f"reader{i}@example.org",
                        "name": "",
                        "language": LANGUAGES[i % 5],
                        "timezone": "UTC",
                        "country": "",
                        "attributes": {},
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for i in chunk
                ],
            )
            insert_many(
                conn,
                subscriptions,
                [
                    {
                        "subscriber_id": i + 1,
                        "list_id": list_id,
                        "status": "confirmed",
                        "soft_bounces": 0,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for i in chunk
                ],
            )
    schedules = load_schedules(site)
    occurrence = create_adhoc(site.store, schedules, "weekly-digest", now=NOW)
    t = time.perf_counter()
    enqueue_occurrence(site, occurrence, NOW, schedules)
    return occurrence, time.perf_counter() - t


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu(admin: Any, app: str, seen: dict[int, float]) -> None:
    """Note the CPU seconds so far of every PostgreSQL backend of `app` (they exit with their client)."""
    with admin.connect() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %(app)s", {"app": app}
        ).scalars()
        for pid in pids:
            try:
                seen[pid] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                pass


def with_app(url: str, app: str) -> str:
    return f"{url}&application_name={app}" if "?" in url else f"{url}?application_name={app}"


class LedgerRun(NamedTuple):
    """Seconds of one ledger run, the drain interleaved with the transport alone (its baseline)."""

    enqueue: float
    render: float
    drain: float
    drain_cpu: float  # this process
    server_cpu: float  # the PostgreSQL backends of the run's connections (0 on SQLite)
    alone: float  # the transport alone handing the same number of messages over
    alone_cpu: float
    standin_cpu: float  # the SendGrid stand-in's CPU during the drain
    standin_alone_cpu: float  # and during the transport alone


def ledger_run(
    site: Any,
    n: int,
    port: int,
    baseline: Callable[[int], tuple[float, float]],
    *,
    postgres: str = "",
    app: str = "",
    chunks: int = 4,
    standin: int = 0,
) -> LedgerRun:
    """Enqueue n subscribers of a fresh occurrence and drain it through the SendGrid stand-in.

    The drain goes in `chunks` parts, each just after `baseline(n / chunks)` (the transport alone
    handing as many messages over): on a shared machine whose speed drifts by the minute, the two
    then see the same machine. On PostgreSQL each stop releases the batch claimed ahead, which the
    next part claims again: one claim more per part than a drain in one go, counted against the ledger.
    """
    import sqlalchemy as sa

    from newsletter.send.engine import PreparedCache, drain
    from newsletter.send.ledger import counts
    from newsletter.store import now_utc

    occurrence, enqueued = ledger_occurrence(site, n)
    schedules = load_schedules(site)
    transport = SendGridTransport("SG.bench", f"http://127.0.0.1:{port}", timeout=30)
    cache = PreparedCache(site, lambda: schedules)
    # The messages are rendered once per language first, outside the timing, as the transport
    # baseline's are: the figure is the ledger's cost, not the renderer's (bench/render.py has that).
    t = time.perf_counter()
    for language in LANGUAGES:
        cache.get(occurrence, language, now_utc())
    rendered = time.perf_counter() - t
    admin = sa.create_engine(postgres) if postgres else None
    wall = cpu = server = alone = alone_cpu = standin_cpu = standin_alone = 0.0
    handed = [0]

    def standin_now() -> float:  # `standin`: the stand-in's pid (its CPU shares the cores too)
        return cpu_seconds(standin) if standin else 0.0

    for part in range(chunks):
        target = n if part == chunks - 1 else (part + 1) * (n // chunks)
        s = standin_now()
        w, c = baseline(target - handed[0])
        alone, alone_cpu, standin_alone = alone + w, alone_cpu + c, standin_alone + standin_now() - s
        s = standin_now()
        before: dict[int, float] = {}
        if admin is not None:
            backend_cpu(admin, app, before)
        t, c = time.perf_counter(), time.process_time()
        drain(
            site, transport, cache, worker="bench", occurrence_id=occurrence,
            progress=lambda m: handed.__setitem__(0, handed[0] + m),
            stop=lambda until=target: handed[0] >= until,
        )  # fmt: skip
        wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - c
        standin_cpu += standin_now() - s
        if admin is not None:
            after: dict[int, float] = {}
            backend_cpu(admin, app, after)
            server += sum(v - before.get(pid, 0.0) for pid, v in after.items())
    if admin is not None:
        admin.dispose()
    assert handed[0] == n and counts(site.store, occurrence) == {"sent": n}, handed
    return LedgerRun(enqueued, rendered, wall, cpu, server, alone, alone_cpu, standin_cpu, standin_alone)


@contextlib.contextmanager
def ledger_store(postgres: str) -> Iterator[str]:
    """A throwaway PostgreSQL schema for one ledger run, or "" (the site's own SQLite file)."""
    if not postgres:
        yield ""
        return
    from tests.conftest import pg_schema_url

    with pg_schema_url(postgres, prefix="bench_") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--outbox", type=int, default=10_000)
    parser.add_argument("--smtp", type=int, default=5_000)
    parser.add_argument("--ledger", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="ledger runs per backend (report the median)")
    parser.add_argument("--chunks", type=int, default=4, help="parts of each drain, each after its baseline")
    parser.add_argument("--postgres", default="", help="also drain the ledger on this PostgreSQL database")
    parser.add_argument(
        "--ledger-sizes",
        default="",
        help="peak RSS of a fresh process draining each size on SQLite (e.g. 100000,1000000)",
    )
    args = parser.parse_args()
    sendgrid, sg_port = start("--serve-sendgrid")
    smtp, smtp_port = start("--serve-smtp")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            site = render_bench.make_site(Path(tmp))
            prepared = prepared_digest(site, render_bench.add_occurrence(site))
            n = args.recipients
            floor_wall, floor_cpu, _ = render_bench.floor_run(prepared, n)
            floor, floor_per_cpu = n / floor_wall, n / floor_cpu
            print(
                f"baseline: bare floor (token + str.replace into the compiled HTML): {floor:,.0f} /s wall, "
                f"{floor_per_cpu:,.0f} /s per CPU-second (load average {os.getloadavg()[0]:.1f})"
            )

            def report(label: str, count: int, wall: float, cpu: float, unit: str = "messages") -> None:
                # CPU seconds of this process too: the machine may be shared, and waiting is not work.
                print(
                    f"{label}: {count:,} {unit} in {wall:.2f} s = {count / wall:,.0f} /s wall "
                    f"({count / cpu:,.0f} /s per CPU-second); "
                    f"ratio to floor {count / wall / floor:.2f} wall, {count / cpu / floor_per_cpu:.2f} CPU"
                )

            transport = SendGridTransport("SG.bench", f"http://127.0.0.1:{sg_port}", timeout=30)
            wall, cpu = hand_over(transport, prepared, n)
            report(f"1. SendGrid, {transport.requests} requests", n, wall, cpu)
            print(
                f"   30,000/s floor: {'met' if n / wall >= 30_000 else 'NOT met'} wall, "
                f"{'met' if n / cpu >= 30_000 else 'NOT met'} per CPU-second"
            )

            print("2. peak RSS of a fresh process streaming N recipients through SendGrid")
            for size in (int(s) for s in args.sizes.split(",")):
                print(f"   {size:>9,}: {child('--memory', size, sg_port)['rss_kb'] / 1024:7.1f} MB")

            outbox = OutboxTransport(Path(tmp) / "outbox")
            wall, cpu = hand_over(outbox, prepared, args.outbox)
            report("3. outbox", args.outbox, wall, cpu, "files")
            smtp_transport = SMTPTransport("127.0.0.1", smtp_port, starttls=False, timeout=30)
            wall, cpu = hand_over(smtp_transport, prepared, args.smtp)
            smtp_transport.close()
            report(f"   SMTP to aiosmtpd, {smtp_transport.connections} connection(s)", args.smtp, wall, cpu)

            if args.ledger_sizes:
                print("5. peak RSS of a fresh process enqueuing and draining N recipients on SQLite")
                for size in (int(x) for x in args.ledger_sizes.split(",")):
                    got = child("--ledger-memory", size, sg_port)
                    print(
                        f"   {size:>9,}: after the enqueue {got['enqueue_kb'] / 1024:6.1f} MB, during the "
                        f"drain {got['drain_kb'] / 1024:6.1f} MB (drained at {size / got['seconds']:,.0f} /s)"
                    )
            site.close()
            if args.ledger:
                backends = [("SQLite", "")] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
                for label, url in backends:
                    for run in range(args.runs):
                        app = f"bench_send_{os.getpid()}"
                        with tempfile.TemporaryDirectory() as ltmp, ledger_store(url) as ledger_url:
                            lsite = render_bench.make_site(
                                Path(ltmp), with_app(ledger_url, app) if ledger_url else ""
                            )
                            got = ledger_run(
                                lsite,
                                args.ledger,
                                sg_port,
                                lambda m: hand_over(transport, prepared, m),
                                postgres=url,
                                app=app,
                                chunks=args.chunks,
                                standin=sendgrid.pid,
                            )
                            lsite.close()
                        n = args.ledger
                        us = 1e6 / n
                        print(
                            f"4. ledger on {label}, {n:,} recipients, run {run + 1}: "
                            f"enqueue {n / got.enqueue:,.0f} rows/s; render {got.render:.2f} s; "
                            f"drain through SendGrid {n / got.drain:,.0f} /s ({n / got.drain_cpu:,.0f} per "
                            f"CPU-second of this process) vs the transport alone, interleaved in "
                            f"{args.chunks} parts, {n / got.alone:,.0f} /s "
                            f"({n / got.alone_cpu:,.0f} /CPU-s): ratio {got.alone / got.drain:.2f} wall, "
                            f"{got.alone_cpu / got.drain_cpu:.2f} CPU; "
                            f"CPU per message: transport {got.alone_cpu * us:.1f} us, "
                            f"drain {got.drain_cpu * us:.1f} us here"
                            + (f" + {got.server_cpu * us:.1f} us in PostgreSQL" if url else "")
                            + f"; the stand-in {got.standin_cpu * us:.1f} us "
                            f"({got.standin_alone_cpu * us:.1f} us for the transport alone)"
                            + f" (load average {os.getloadavg()[0]:.1f})"
                        )
    finally:
        stop(sendgrid)
        stop(smtp)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-sendgrid"]:
        serve_sendgrid()
    elif sys.argv[1:2] == ["--serve-smtp"]:
        serve_smtp()
    elif sys.argv[1:2] == ["--memory"]:
        memory_child(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["--ledger-memory"]:
        ledger_memory_child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
