"""Campaign page response time with 1,000,000 tracking events and 100,000 subscribers, SQLite and
PostgreSQL.

    .venv/bin/python bench/dashboard.py [--events 1000000] [--subscribers 100000] [--requests 40]
        [--postgres URL]   (default: $NEWSLETTER_TEST_POSTGRES_URL; --only sqlite|postgresql)

For each backend: fills a fresh store, folds the events into the rollups (timed once), then times
  - the campaign page over real HTTP (uvicorn on 127.0.0.1, logged in), p50/p95, with no new events
    and with 500 new events arriving before each request (the refresh the page does first);
  - the baseline in the same run: the same figures computed straight from the events table (the
    naive un-aggregated queries), p50/p95.
Prints the ratio baseline / page. The brief's bar: the page under 300 ms on both backends.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa
import uvicorn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.accounts import add_user  # noqa: E402
from newsletter.report import figures, rollup  # noqa: E402
from newsletter.site import Site  # noqa: E402
from newsletter.store.bulk import insert_many  # noqa: E402
from newsletter.store.tables import events, links, occurrences, sends, subscribers  # noqa: E402
from newsletter.track.events import db_time, insert_events  # noqa: E402
from newsletter.web.app import create_app  # noqa: E402

LANGS = ("en", "fr", "es", "ru", "pt")
T0 = datetime(2021, 5, 18, 9, 0, tzinfo=UTC)
OCCURRENCES = 10
PASSWORD = "bench password 123"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- filling the store


def fill(site: Site, n_events: int, n_subscribers: int) -> int:
    """Subscribers, 10 sent occurrences (the first to everyone), their links, ledger and events."""
    rng = random.Random(8)
    store = site.store
    dialect = store.dialect
    with store.write() as conn:
        insert_many(
            conn,
            subscribers,
            [
                {
                    "id": i,
                    "email": f"p{i}@example.org",
                    "name": "",
                    "language": LANGS[i % 5],
                    "timezone": "UTC",
                    "country": "",
                    "attributes": {},
                    "created_at": T0,
                    "updated_at": T0,
                }
                for i in range(1, n_subscribers + 1)
            ],
        )
    with store.write() as conn:
        for o in range(1, OCCURRENCES + 1):
            due = T0 + timedelta(days=7 * (o - 1))
            conn.execute(
                occurrences.insert().values(
                    id=o,
                    key=f"bench/{o}",
                    campaign=f"campaign-{o}",
                    due_at=due,
                    status="sent",
                    languages=list(LANGS),
                    template="digest",
                    created_at=due,
                    updated_at=due,
                )
            )
            for lang in LANGS:
                for label in ("declaration-sign-on", "hub-news", "webinar", ""):
                    conn.execute(
                        links.insert().values(
                            occurrence_id=o,
                            campaign=f"campaign-{o}",
                            language=lang,
                            label=label,
                            url=f"https://hub.example.org/{label or 'home'}?lang={lang}",
                            created_at=due,
                        )
                    )
        link_ids = {(r.occurrence_id, r.language): [] for r in conn.execute(sa.select(links))}
        for r in conn.execute(sa.select(links.c.id, links.c.occurrence_id, links.c.language, links.c.label)):
            link_ids[(r.occurrence_id, r.language)].append((r.id, r.label))
    # The ledger: occurrence 1 went to every subscriber, the others to a tenth each.
    send_rows = []
    send_id = 0
    recipients: dict[int, list[tuple[int, int]]] = {}
    for o in range(1, OCCURRENCES + 1):
        people = range(1, n_subscribers + 1) if o == 1 else range(o, n_subscribers + 1, 10)
        recipients[o] = []
        for sub in people:
            send_id += 1
            recipients[o].append((send_id, sub))
            due = T0 + timedelta(days=7 * (o - 1))
            send_rows.append(
                {
                    "id": send_id,
                    "occurrence_id": o,
                    "subscriber_id": sub,
                    "email": f"p{sub}@example.org",
                    "language": LANGS[sub % 5],
                    "status": "sent",
                    "created_at": due,
                    "sent_at": due,
                }
            )
    with store.write() as conn:
        insert_many(conn, sends, send_rows)
    # Events: half for occurrence 1 (the page we time), half spread over the others.
    batch: list[tuple[Any, ...]] = []
    made = 0
    kinds = (
        ["delivered"] * 40
        + ["open"] * 35
        + ["click"] * 18
        + ["bounce", "unsubscribe", "spamreport", "conversion", "dropped", "processed", "deferred"]
    )
    while made < n_events:
        o = 1 if made < n_events // 2 else rng.randint(2, OCCURRENCES)
        send, sub = rng.choice(recipients[o])
        lang = LANGS[sub % 5]
        kind = rng.choice(kinds)
        link_id, label = (None, None)
        if kind in ("click", "conversion"):
            link_id, label = rng.choice(link_ids[(o, lang)])
        at = T0 + timedelta(days=7 * (o - 1), minutes=rng.expovariate(1 / 600))
        batch.append(
            (
                kind,
                "sendgrid",
                o,
                send,
                sub,
                link_id,
                f"campaign-{o}",
                lang,
                label or None,
                rng.random() < 0.25 if kind in ("open", "click") else False,
                "",
                "",
                None,
                None,
                db_time(at, dialect),
            )
        )
        made += 1
        if len(batch) >= 100_000:
            with store.write() as conn:
                insert_events(conn, batch)
            batch = []
    if batch:
        with store.write() as conn:
            insert_events(conn, batch)
    if not store.is_sqlite:
        with store.write() as conn:
            for table in ("subscribers", "sends", "events", "links", "occurrences"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
            conn.exec_driver_sql("ANALYZE")
    else:
        with store.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    return made


def more_events(site: Site, n: int, rng: random.Random) -> None:
    """`n` new opens and clicks on occurrence 1 in its first two days, as the tracking stage writes them."""
    dialect = site.store.dialect
    rows = [
        (
            rng.choice(("open", "click")),
            "pixel",
            1,
            rng.randint(1, 1000),
            None,
            None,
            "campaign-1",
            rng.choice(LANGS),
            None,
            False,
            "",
            "",
            None,
            None,
            db_time(T0 + timedelta(minutes=rng.uniform(0, 2880)), dialect),
        )
        for _ in range(n)
    ]
    with site.store.write() as conn:
        insert_events(conn, rows)


# ---------------------------------------------------------------- the baseline: figures from raw events


def naive_report(site: Site, occurrence_id: int) -> Any:
    """What the page shows, computed from the events table on each view (no rollups)."""
    e = events.c
    hour = rollup.hour_of(e.at, site.store.dialect)
    human_send = sa.case((e.machine == sa.false(), e.send_id))
    with site.store.read() as conn:
        per_kind = conn.execute(
            sa.select(
                e.language,
                e.kind,
                sa.func.count(),
                sa.func.count(sa.distinct(e.send_id)),
                sa.func.count(sa.distinct(human_send)),
            )
            .where(e.occurrence_id == occurrence_id)
            .group_by(e.language, e.kind)
        ).all()
        per_link = conn.execute(
            sa.select(e.link_id, e.kind, sa.func.count(), sa.func.count(sa.distinct(human_send)))
            .where(e.occurrence_id == occurrence_id, e.link_id.is_not(None))
            .group_by(e.link_id, e.kind)
        ).all()
        sign_on = conn.execute(
            sa.select(e.language, sa.func.count(sa.distinct(human_send)))
            .where(e.occurrence_id == occurrence_id, e.kind == "click", e.label == "declaration-sign-on")
            .group_by(e.language)
        ).all()
        timeline = conn.execute(
            sa.select(hour, e.kind, sa.func.count(sa.distinct(human_send)))
            .where(e.occurrence_id == occurrence_id, e.kind.in_(("open", "click")))
            .group_by(hour, e.kind)
        ).all()
        ledger = conn.execute(
            sa.select(sends.c.language, sends.c.status, sa.func.count())
            .where(sends.c.occurrence_id == occurrence_id)
            .group_by(sends.c.language, sends.c.status)
        ).all()
    return per_kind, per_link, sign_on, timeline, ledger


# ---------------------------------------------------------------- one backend


def serve(site: Site) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(site), host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run_backend(name: str, url: str, args: argparse.Namespace, site_dir: Path) -> dict[str, Any]:
    site = Site.load(
        site_dir, environ={"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": "bench-secret-key"}
    )
    start = time.perf_counter()
    made = fill(site, args.events, args.subscribers)
    filled = time.perf_counter() - start
    start = time.perf_counter()
    rollup.refresh_all(site.store)
    folded = time.perf_counter() - start
    with site.store.read() as conn:
        rollup_rows = conn.scalar(sa.select(sa.func.count()).select_from(sa.table("report_counts")))
    report = figures.campaign_report(site.store, [1])
    # The rollups and the naive queries must agree before their times mean anything.
    naive = naive_report(site, 1)
    naive_opens = sum(int(r[4]) for r in naive[0] if r[1] == "open")
    assert naive_opens == report.total.opens, (naive_opens, report.total.opens)
    add_user(site.store, "bench@example.org", "organiser", PASSWORD)
    server, base = serve(site)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            page = client.get("/admin/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            client.post(
                "/admin/login", data={"csrf": token, "email": "bench@example.org", "password": PASSWORD}
            )

            def get_page() -> None:
                r = client.get("/admin/campaigns/1")
                assert r.status_code == 200 and "sign-on" in r.text.lower(), r.status_code

            get_page()
            quiet = timed(get_page, args.requests)
            rng = random.Random(1)
            busy = []
            for _ in range(args.requests // 2):
                more_events(site, 500, rng)
                busy += timed(get_page, 1)
    finally:
        server.should_exit = True
    baseline = timed(lambda: naive_report(site, 1), max(5, args.requests // 4))
    site.close()
    return {
        "backend": name,
        "events": made,
        "fill_s": filled,
        "fold_s": folded,
        "rollup_rows": rollup_rows,
        "page": quiet,
        "page_busy": busy,
        "baseline": baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--postgres", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", ""))
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    site_dir = tmp / "site"
    site_dir.mkdir()
    for part in ("newsletter.toml", "lists", "templates", "schedules.yaml"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, site_dir / part)
        elif src.exists():
            shutil.copy2(src, site_dir / part)
    results = []
    try:
        if args.only in (None, "sqlite"):
            results.append(run_backend("sqlite", f"sqlite:///{tmp / 'bench.db'}", args, site_dir))
        if args.postgres and args.only in (None, "postgresql"):
            schema = "bench_" + uuid.uuid4().hex[:10]
            admin = sa.create_engine(args.postgres)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            sep = "&" if "?" in args.postgres else "?"
            try:
                url = f"{args.postgres}{sep}options={quote(f'-csearch_path={schema}')}"
                results.append(run_backend("postgresql", url, args, site_dir))
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                admin.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\ncampaign page, {args.events:,} events, {args.subscribers:,} subscribers, {args.requests} requests"
    )
    for r in results:
        p50, p95 = statistics.median(r["page"]), percentile(r["page"], 95)
        b50, b95 = statistics.median(r["page_busy"]), percentile(r["page_busy"], 95)
        n50, n95 = statistics.median(r["baseline"]), percentile(r["baseline"], 95)
        print(
            f"{r['backend']:>10}: fill {r['fill_s']:.0f} s, first fold of all events {r['fold_s']:.1f} s "
            f"({r['rollup_rows']:,} rollup rows)"
        )
        print(f"{'':>10}  page over HTTP        p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
        print(f"{'':>10}  page, +500 new events p50 {b50:7.1f} ms  p95 {b95:7.1f} ms")
        print(
            f"{'':>10}  baseline (raw events) p50 {n50:7.1f} ms  p95 {n95:7.1f} ms  (queries only, no HTTP)"
        )
        print(
            f"{'':>10}  ratio baseline/page   p50 {n50 / p50:5.1f}x  p95 {n95 / p95:5.1f}x; "
            f"under 300 ms: {'yes' if p95 < 300 and b95 < 300 else 'NO'}"
        )


if __name__ == "__main__":
    main()
