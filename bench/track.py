"""Benchmark of the track stage: click redirects and the SendGrid webhook, against bare routes.

    .venv/bin/python bench/track.py [--seconds 8] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

One server process (one uvicorn worker, uvloop + httptools, the app of `newsletter serve`) serves the
real app plus two bare routes of the same framework: `GET /bare` (a constant 302) and `POST /bare-post`
(reads the body, answers 200). Load comes from a second process on loopback: wrk (Debian's package)
for throughput, and a small open-loop Python client for latency at a fixed 2,000 requests/s.

Figures, each with its same-run baseline:
1. tracked click redirects/s (signed tokens, 20,000 recipients x 2 links) vs /bare; p50/p99 latency.
2. p50/p99 latency at 2,000/s, tracked vs bare.
3. nothing lost: events stored after a graceful stop (SIGTERM) = tracked redirects answered; and how
   long after the load the writer (a process at lower priority) has stored everything.
4. webhook ingest: signed batches of 1,000 events (ECDSA verify, dedupe, ledger match, insert), events/s,
   one batch at a time and four at a time (SendGrid posts concurrently), vs posting the same bodies to
   /bare-post; a replayed batch is refused as duplicates.
Also the CPU time per request of the web worker (bare and tracked) and of the hit writer process per
hit: on a two-core machine the writer and wrk share the cores with the worker, so the ratio moves with
them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36"
RECIPIENTS = 20_000


def serve(site_dir: str, port_file: str) -> None:
    """The server process: the real app plus the bare routes, one worker."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from newsletter.site import Site
    from newsletter.web.app import create_app

    async def bare(_request: Request) -> Response:
        return Response(status_code=302, headers={"location": "https://hub.example.org/sign-on"})

    async def bare_post(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    app = create_app(Site.load(site_dir))
    # Same path shape as a click (/b/{link}/{r}), so routing and the load generator cost the same. The
    # bare route goes first and the click route is second (one failed match more than in the real app);
    # /bare-post goes last, where it costs the click route nothing.
    app.router.routes.insert(0, Route("/b/{link}/{r}", bare))
    app.router.routes.append(Route("/bare-post", bare_post, methods=["POST"]))
    # IPPROTO_TCP named, or asyncio leaves TCP_NODELAY off and responses wait for delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    Path(port_file).write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", ws="none", lifespan="on", log_level="warning", access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])


def seed(site_dir: Path, env: dict[str, str]) -> tuple[list[str], list[str], list[int], int]:
    """20,000 recipients of one message with two links; returns click paths and send ids."""
    from newsletter import urls
    from newsletter.audience.lists import sync_lists
    from newsletter.site import Site
    from newsletter.store import now_utc
    from newsletter.store.tables import links, occurrences, sends, subscribers
    from newsletter.tokens import Signer

    site = Site.load(site_dir, environ=env)
    sync_lists(site)
    now = now_utc()
    with site.store.write() as conn:
        occ = conn.execute(
            occurrences.insert().values(
                key="bench",
                campaign="declaration-call",
                due_at=now,
                status="sent",
                languages=["en"],
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        link_ids = [
            conn.execute(
                links.insert().values(
                    occurrence_id=occ,
                    campaign="declaration-call",
                    language="en",
                    url=url,
                    label=label,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            for url, label in (
                ("https://hub.example.org/sign-on?utm_source=newsletter", "declaration-sign-on"),
                ("https://hub.example.org/webinars?utm_source=newsletter", "webinars"),
                ("https://hub.example.org/declaration?utm_source=newsletter", "declaration"),
            )
        ]
        conn.execute(
            subscribers.insert(),
            [
                {"email": f"p{n}@example.org", "language": "en", "created_at": now, "updated_at": now}
                for n in range(RECIPIENTS)
            ],
        )
        ids = [row.id for row in conn.execute(subscribers.select().order_by(subscribers.c.id))]
        conn.execute(
            sends.insert(),
            [
                {
                    "occurrence_id": occ,
                    "subscriber_id": s,
                    "email": f"p{n}@example.org",
                    "language": "en",
                    "status": "sent",
                    "created_at": now,
                    "sent_at": now,
                }
                for n, s in enumerate(ids)
            ],
        )
        send_ids = [row.id for row in conn.execute(sends.select().order_by(sends.c.id))]
    signer = Signer(site.settings["secret_key"])
    tokens = [urls.link_token(signer, i) for i in link_ids]
    rs = [urls.recipient_token(signer, s) for s in send_ids]
    paths = [f"/c/{tokens[n % 2]}/{r}" for n, r in enumerate(rs)]
    exact = [f"/c/{tokens[2]}/{r}" for r in rs]  # the third link: only the counted, paced phase uses it
    site.close()
    return paths, exact, send_ids, link_ids[2]


def settle(site_dir: Path, env: dict[str, str]) -> float:
    """Seconds until the stored events stop growing after the load: how far the writer lags behind."""
    from sqlalchemy import func, select

    from newsletter.site import Site
    from newsletter.store.tables import events

    site = Site.load(site_dir, environ=env)
    start = time.perf_counter()
    last, changed = -1, start
    while time.perf_counter() - changed < 1.0:
        with site.store.read() as conn:
            count = conn.scalar(select(func.count()).select_from(events))
        if count != last:
            last, changed = count, time.perf_counter()
        time.sleep(0.05)
    site.close()
    return changed - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time so far of every local PostgreSQL process (the server's share of storing the hits)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return total


def wrk(url: str, seconds: int, script: Path | None = None, connections: int = 64) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"User-Agent: {UA}"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

    def latency(pct: str) -> float:
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)$", out, re.M)
        return float(found.group(1)) * unit[found.group(2)] if found else float("nan")

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "bad": int(bad.group(1)) if bad else 0,
        "p50": latency("50"),
        "p99": latency("99"),
    }


async def _paced(port: int, paths: list[str], rate: float, seconds: float, conns: int = 32) -> list[float]:
    """Open loop: requests start on schedule whatever the answers; latency counts from the schedule."""
    latencies: list[float] = []
    per_conn = rate / conns
    start = time.perf_counter() + 0.2

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while True:
            due = start + (n + k / conns) / per_conn
            if due - start > seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path = paths[(n * conns + k) % len(paths)]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head, re.I)
            if length and int(length.group(1)):
                await reader.readexactly(int(length.group(1)))
            latencies.append((time.perf_counter() - due) * 1000)
            n += 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(conns)))
    return latencies


def paced(port: int, paths: list[str], rate: float, seconds: float) -> dict[str, float]:
    import uvloop

    lat = sorted(uvloop.run(_paced(port, paths, rate, seconds)))
    return {"count": len(lat), "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)]}


def webhook_batches(
    key, send_ids: list[int], batches: int, size: int = 1000
) -> list[tuple[bytes, dict[str, str]]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    kinds = ["processed", "delivered", "open", "click", "delivered", "open", "deferred", "open"]
    out = []
    now = int(time.time())
    for b in range(batches):
        events = []
        for n in range(size):
            s = send_ids[(b * size + n) % len(send_ids)]
            events.append(
                {
                    "email": f"p{s}@example.org",
                    "event": kinds[n % len(kinds)],
                    "timestamp": now,
                    "sg_event_id": f"bench-{b}-{n}",
                    "sg_message_id": f"msg{b}.{n}",
                    "send_id": str(s),
                    "campaign": "declaration-call",
                    "occurrence": "1",
                    "language": "en",
                    "useragent": UA,
                    "ip": "203.0.113.9",
                    "sg_machine_open": n % 3 == 0,
                }
            )
        body = json.dumps(events).encode()
        ts = str(now)
        sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        out.append(
            (
                body,
                {
                    "X-Twilio-Email-Event-Webhook-Signature": sig,
                    "X-Twilio-Email-Event-Webhook-Timestamp": ts,
                    "content-type": "application/json",
                },
            )
        )
    return out


def post(client: Any, body: bytes, headers: dict[str, str]) -> int:
    """Post one signed batch to the webhook; the number of events it stored."""
    answer = client.post("/webhooks/sendgrid", content=body, headers=headers)
    answer.raise_for_status()
    return int(answer.json()["stored"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from sqlalchemy import func, select

    from newsletter.site import Site
    from newsletter.store.tables import events

    tmp = Path(tempfile.mkdtemp(prefix="bench-track-"))
    site_dir = tmp / "site"
    site_dir.mkdir()
    for part in ("newsletter.toml", "lists", "templates"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, site_dir / part)
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    db = args.postgres or f"sqlite:///{tmp / 'bench.db'}"
    if args.postgres:
        import sqlalchemy as sa

        schema = f"bench_track_{os.getpid()}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in args.postgres else "?"
        db = f"{args.postgres}{sep}options=-csearch_path%3D{schema}"
    env = {
        "NEWSLETTER_DATABASE_URL": db,
        "NEWSLETTER_SECRET_KEY": "bench-secret-key-0123456789",
        "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": public,
    }
    print(f"seeding {RECIPIENTS} recipients ({'PostgreSQL' if args.postgres else 'SQLite'}) ...", flush=True)
    paths, exact, send_ids, exact_link = seed(site_dir, env)
    script = tmp / "paths.lua"
    script.write_text(
        "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
    )
    bare_script = tmp / "bare.lua"
    bare_script.write_text(script.read_text().replace('"/c/', '"/b/'))
    bare_paths = [p.replace("/c/", "/b/", 1) for p in exact]
    port_file = tmp / "port"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(site_dir), str(port_file)], env={**os.environ, **env}
    )
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        port = int(port_file.read_text())
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        warm = wrk(base + "/", 2, bare_script)
        w2 = wrk(base + "/", 2, script)
        writer = int(subprocess.check_output(["pgrep", "-P", str(server.pid)]).split()[0])
        bare_runs, track_runs = [], []
        for _ in range(3):  # alternate, so both see the same machine load
            for runs, lua in ((bare_runs, bare_script), (track_runs, script)):
                before = cpu_seconds(server.pid), cpu_seconds(writer), postgres_cpu_seconds()
                run = wrk(base + "/", args.seconds, lua)
                time.sleep(0.5)  # the writer's last batch of this run
                run["server_us"] = (cpu_seconds(server.pid) - before[0]) / run["requests"] * 1e6
                run["writer_us"] = (cpu_seconds(writer) - before[1]) / run["requests"] * 1e6
                run["postgres_us"] = (postgres_cpu_seconds() - before[2]) / run["requests"] * 1e6
                runs.append(run)
        drain = settle(site_dir, env)
        bare = max(bare_runs, key=lambda r: r["rps"])
        track = max(track_runs, key=lambda r: r["rps"])
        bad = sum(r["bad"] for r in track_runs) + w2["bad"] + warm["bad"]
        bare_paced = paced(port, bare_paths, 2000, 5)
        track_paced = paced(port, exact, 2000, 5)
        tracked = track_paced["count"]  # wrk does not count requests cut off at its end: these are exact

        batches = webhook_batches(key, send_ids, 110)
        with httpx.Client(base_url=base, timeout=60) as client:
            t0 = time.perf_counter()
            for body, headers in batches[:10]:
                client.post("/bare-post", content=body, headers=headers).raise_for_status()
            bare_post = 10_000 / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            stored = sum(post(client, body, headers) for body, headers in batches[10:50])
            ingest = 40_000 / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            replay = client.post("/webhooks/sendgrid", content=batches[10][0], headers=batches[10][1]).json()
            replay_rate = 1000 / (time.perf_counter() - t0)
        # SendGrid posts batches concurrently: four connections at once.
        clients = [httpx.Client(base_url=base, timeout=60) for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            t0 = time.perf_counter()
            jobs = [pool.submit(post, clients[n % 4], *batch) for n, batch in enumerate(batches[50:110])]
            stored_concurrent = sum(job.result() for job in jobs)
            ingest_concurrent = 60_000 / (time.perf_counter() - t0)
        for client in clients:
            client.close()
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: the lifespan writes the hits still buffered
        server.wait(60)
    site = Site.load(site_dir, environ=env)
    with site.store.read() as conn:
        clicks = conn.scalar(select(func.count()).select_from(events).where(events.c.link_id == exact_link))
    site.close()

    ratios = sorted(t["rps"] / b["rps"] for b, t in zip(bare_runs, track_runs, strict=True))
    print(
        f"\nclick redirects, one uvicorn worker (uvloop+httptools), wrk -t1 -c64, 3 alternated pairs"
        f" of {args.seconds}s runs (the best of each kind shown)"
    )
    print(f"  bare route  {bare['rps']:>9,.0f}/s  p50 {bare['p50']:.2f} ms  p99 {bare['p99']:.2f} ms")
    print(
        f"  tracked     {track['rps']:>9,.0f}/s  p50 {track['p50']:.2f} ms  p99 {track['p99']:.2f} ms"
        f"  (floor 8,000/s)"
    )
    print(
        f"  ratio tracked/bare, median of the pairs {ratios[1]:.2f} (floor 0.6);"
        f" pairs {', '.join(f'{r:.2f}' for r in ratios)}"
    )
    print(
        "  CPU per request (median of runs): web worker"
        f" bare {median(r['server_us'] for r in bare_runs):.1f} us,"
        f" tracked {median(r['server_us'] for r in track_runs):.1f} us;"
        f" hit writer process {median(r['writer_us'] for r in track_runs):.1f} us per hit"
    )
    if args.postgres:
        print(
            "  PostgreSQL server CPU per request (median of runs, all local postgres processes):"
            f" bare {median(r['postgres_us'] for r in bare_runs):.1f} us,"
            f" tracked {median(r['postgres_us'] for r in track_runs):.1f} us"
        )
    print(f"  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  writer lag: the last hits of the load stored {drain:.2f} s after it ended")
    print("paced at 2,000/s, open loop, 5 s")
    print(f"  bare route  p50 {bare_paced['p50']:.2f} ms  p99 {bare_paced['p99']:.2f} ms")
    print(
        f"  tracked     p50 {track_paced['p50']:.2f} ms  p99 {track_paced['p99']:.2f} ms (floor: p99 < 10 ms)"
    )
    print(
        f"nothing lost: {tracked:,} paced redirects answered, {clicks:,} of their click events stored"
        f" after SIGTERM ({'OK' if clicks == tracked else 'MISMATCH'}); {bad} non-3xx answers under wrk"
    )
    print("webhook, signed batches of 1,000 events")
    print(f"  ingest      {ingest:>9,.0f} events/s, one batch at a time (floor 20,000/s); stored {stored:,}")
    print(f"  ingest      {ingest_concurrent:>9,.0f} events/s, 4 at a time; stored {stored_concurrent:,}")
    print(f"  bare POST   {bare_post:>9,.0f} events/s  ratio {ingest / bare_post:.2f} of bare")
    print(
        f"  replayed batch: {replay['stored']} stored, {replay['duplicates']} duplicates,"
        f" {replay_rate:,.0f} events/s"
    )
    if args.postgres:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        main()
