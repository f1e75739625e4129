"""Scale-out on PostgreSQL: several `newsletter worker` processes on one ledger, several web instances.

    .venv/bin/python bench/scale.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
                                    [--recipients 200000] [--workers 1,2,4] [--web 1,2] [--seconds 8]

1. Workers: for each count, a fresh schema, N confirmed members in five languages and one digest
   occurrence to them, enqueued; then that many `newsletter worker --once` processes drain it at once
   through bench/send.py's SendGrid stand-in (202 at once, counting the recipients it is handed).
   Messages/s over the drain (first claim to last settled batch, from `send_batches`), how the batches
   split between the workers, and no overlap: the ledger shows each row sent once and the stand-in was
   handed exactly N recipients. CPU per message of the worker processes (their rusage) and of their
   PostgreSQL backends (sampled from /proc), so the figure carries to a machine with more cores.
2. Web: 1 and 2 instances of the app (bench/track.py's server: the real app plus the bare route) on
   one store, each with its own hit writer; wrk on each at once (64 connections shared out) for
   tracked clicks and for the bare route, then signed 1,000-event webhook batches posted four at a
   time, spread over the instances. Every figure is the sum over the instances.
On a 2-core machine shared with other work the curves flatten at the cores: read the CPU figures.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import render as render_bench  # noqa: E402
import send as send_bench  # noqa: E402
import track as track_bench  # noqa: E402

from tests.conftest import pg_schema_url  # noqa: E402

SECRET = "bench-" * 6  # bench/render.py's make_site uses this key


def workers_run(pg: str, n_workers: int, recipients: int, sg_port: int) -> dict[str, float]:
    import httpx
    import sqlalchemy as sa
    from sqlalchemy import func, select

    from newsletter.send import ledger
    from newsletter.store.tables import send_batches

    admin = sa.create_engine(pg)
    with tempfile.TemporaryDirectory() as tmp, pg_schema_url(pg, prefix="bench_") as url:
        site = render_bench.make_site(Path(tmp), url)
        occurrence, _ = send_bench.ledger_occurrence(site, recipients)
        handed_before = int(httpx.get(f"http://127.0.0.1:{sg_port}/count").text)
        app = f"bench_worker_{os.getpid()}"
        env = {
            **os.environ,
            "NEWSLETTER_DATABASE_URL": send_bench.with_app(url, app),
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_TRANSPORT": "sendgrid",
            "NEWSLETTER_SENDGRID_API_KEY": "SG.bench",
            "NEWSLETTER_SENDGRID_HOST": f"http://127.0.0.1:{sg_port}",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        cmd = [sys.executable, "-m", "newsletter", "worker", "--once", "--site", str(site.root)]
        procs = [
            subprocess.Popen([*cmd, "--name", f"w{k}"], env=env, cwd=REPO, stderr=subprocess.PIPE)
            for k in range(n_workers)
        ]
        seen: dict[int, float] = {}
        worker_cpu = 0.0
        running = {p.pid: p for p in procs}
        while running:
            send_bench.backend_cpu(admin, app, seen)
            for pid, proc in list(running.items()):
                done, status, usage = os.wait4(pid, os.WNOHANG)
                if done:
                    worker_cpu += usage.ru_utime + usage.ru_stime
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    del running[pid]
            time.sleep(0.1)
        for proc in procs:
            err = proc.stderr.read().decode() if proc.stderr else ""
            assert proc.returncode == 0, err
        handed = int(httpx.get(f"http://127.0.0.1:{sg_port}/count").text) - handed_before
        counts = ledger.counts(site.store, occurrence)
        with site.store.read() as conn:
            first, last = conn.execute(
                select(func.min(send_batches.c.created_at), func.max(send_batches.c.updated_at))
            ).one()
            split = sorted(
                int(n)
                for _, n in conn.execute(
                    select(send_batches.c.worker, func.sum(send_batches.c.size)).group_by(
                        send_batches.c.worker
                    )
                )
            )
        site.close()
    admin.dispose()
    seconds = (last - first).total_seconds()
    return {
        "rate": recipients / seconds,
        "seconds": seconds,
        "worker_us": worker_cpu / recipients * 1e6,
        "backend_us": sum(seen.values()) / recipients * 1e6,
        "overlap": int(counts != {"sent": recipients} or handed != recipients),
        "handed": handed,
        "split": split,  # type: ignore[dict-item]
    }


def web_run(pg: str, instances: int, seconds: int, batches_n: int = 40) -> dict[str, float]:
    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
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
    servers: list[subprocess.Popen[bytes]] = []
    with pg_schema_url(pg, prefix="bench_") as url:
        env = {
            "NEWSLETTER_DATABASE_URL": url,
            "NEWSLETTER_SECRET_KEY": "bench-secret-key-0123456789",
            "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": public,
        }
        paths, _, send_ids, _ = track_bench.seed(site_dir, env)
        script = tmp / "paths.lua"
        script.write_text(
            "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
            "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
        )
        bare_script = tmp / "bare.lua"
        bare_script.write_text(script.read_text().replace('"/c/', '"/b/'))
        try:
            ports = []
            for k in range(instances):
                port_file = tmp / f"port{k}"
                servers.append(
                    subprocess.Popen(
                        [sys.executable, str(BENCH / "track.py"), "--serve", str(site_dir), str(port_file)],
                        env={**os.environ, **env},
                    )
                )
                while not port_file.exists() or not port_file.read_text():
                    time.sleep(0.05)
                ports.append(int(port_file.read_text()))
            for port in ports:
                while True:
                    try:
                        httpx.get(f"http://127.0.0.1:{port}/healthz")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)

            def load(lua: Path, secs: int) -> float:
                with ThreadPoolExecutor(instances) as pool:
                    runs = [
                        pool.submit(track_bench.wrk, f"http://127.0.0.1:{p}/", secs, lua, 64 // instances)
                        for p in ports
                    ]
                    return sum(r.result()["rps"] for r in runs)

            load(bare_script, 2)
            load(script, 2)
            bare, tracked = [], []
            for _ in range(3):  # alternated, as in bench/track.py
                bare.append(load(bare_script, seconds))
                tracked.append(load(script, seconds))
            batches = track_bench.webhook_batches(key, send_ids, batches_n)
            clients = [
                httpx.Client(base_url=f"http://127.0.0.1:{ports[n % instances]}", timeout=60)
                for n in range(4)
            ]
            with ThreadPoolExecutor(4) as pool:
                t0 = time.perf_counter()
                jobs = [pool.submit(track_bench.post, clients[n % 4], *b) for n, b in enumerate(batches)]
                stored = sum(job.result() for job in jobs)
                ingest = batches_n * 1000 / (time.perf_counter() - t0)
            for client in clients:
                client.close()
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
            for server in servers:
                server.wait(60)
    shutil.rmtree(tmp, ignore_errors=True)
    bare.sort()
    tracked.sort()
    return {"bare": bare[1], "tracked": tracked[1], "ingest": ingest, "stored": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--web", default="1,2")
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.workers:
        sendgrid, sg_port = send_bench.start("--serve-sendgrid")
        try:
            base = None
            for n in (int(w) for w in args.workers.split(",")):
                r = workers_run(args.postgres, n, args.recipients, sg_port)
                base = base or r["rate"]
                print(
                    f"{n} worker(s), {args.recipients:,} recipients: {r['rate']:,.0f} messages/s "
                    f"({r['rate'] / base:.2f}x one worker) over {r['seconds']:.1f} s; batches' rows per "
                    f"worker {r['split']}; CPU per message: workers {r['worker_us']:.1f} us, their "
                    f"PostgreSQL backends {r['backend_us']:.1f} us; stand-in handed {r['handed']:,} "
                    f"({'each recipient once' if not r['overlap'] else 'OVERLAP OR LOSS'})",
                    flush=True,
                )
        finally:
            send_bench.stop(sendgrid)
    if args.web:
        base_web = None
        for n in (int(w) for w in args.web.split(",")):
            r = web_run(args.postgres, n, args.seconds)
            base_web = base_web or r
            print(
                f"{n} web instance(s): tracked clicks {r['tracked']:,.0f}/s "
                f"({r['tracked'] / base_web['tracked']:.2f}x one), bare route {r['bare']:,.0f}/s, "
                f"tracked/bare {r['tracked'] / r['bare']:.2f}; webhook 4 batches at a time "
                f"{r['ingest']:,.0f} events/s ({r['ingest'] / base_web['ingest']:.2f}x one), "
                f"stored {r['stored']:,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
