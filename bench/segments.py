"""Streaming a behavioural segment with 100,000 subscribers and 1,000,000 tracking events, against
streaming a plain list audience in the same run; SQLite and PostgreSQL.

    .venv/bin/python bench/segments.py [--events 1000000] [--subscribers 100000] [--runs 3]
        [--postgres URL]   (default: $NEWSLETTER_TEST_POSTGRES_URL; --only sqlite|postgresql)

For each backend: fills a fresh store (everyone on `members`, 10 sent campaigns, their ledger and the
events: opens, clicks on labelled links, conversions, a quarter flagged as machine), then, alternating
`--runs` times, streams with `stream_audience` (keyset pages of 2,000, as the sender does):
  - the baseline: the plain list audience {lists: [members]};
  - the example site's "clicked the sign-on link but did not sign" segment (clicked a
    declaration-sign-on link in two campaigns, no conversion, within 30 days);
  - a "did not open" segment (no human open of one campaign within 30 days).
Prints rows/s (median of the runs), the ratio to the baseline, and the Python heap peak while
streaming (tracemalloc) for the full audience and for a quarter of the subscribers: flat memory means
the peak does not grow with the audience.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.audience.lists import sync_lists  # noqa: E402
from newsletter.audience.select import stream_audience  # noqa: E402
from newsletter.campaigns import Activity, Audience  # noqa: E402
from newsletter.site import Site  # noqa: E402
from newsletter.store.bulk import insert_many  # noqa: E402
from newsletter.store.tables import lists, occurrences, sends, subscribers, subscriptions  # noqa: E402
from newsletter.track.events import db_time, insert_events  # noqa: E402

LANGS = ("en", "fr", "es", "ru", "pt")
NOW = datetime(2021, 5, 29, 12, tzinfo=UTC)
CAMPAIGNS = ("signon-14d", "signon-3d", "weekly-1", "weekly-2", "webinar-april-14d")
CAMPAIGNS += ("webinar-april-1d", "webinar-may-7d", "hlm-7d", "weekly-3", "weekly-4")
LABELS = ("declaration-sign-on", "hub-news", "registration", "join", "")

PLAIN = Audience(lists=("members",))
CLICKED_NOT_SIGNED = Audience(
    lists=("members",),
    clicked=Activity(label="declaration-sign-on", campaigns=("signon-14d", "signon-3d")),
    converted=False,
    within=timedelta(days=30),
)
NOT_OPENED = Audience(
    lists=("members",), not_opened=Activity(campaigns=("signon-14d",)), within=timedelta(days=30)
)


def fill(site: Site, n_events: int, n_subscribers: int) -> None:
    rng = random.Random(15)
    store = site.store
    with store.write() as conn:
        members = conn.scalar(sa.select(lists.c.id).where(lists.c.slug == "members"))
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
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(1, n_subscribers + 1)
            ],
        )
        insert_many(
            conn,
            subscriptions,
            [
                {
                    "subscriber_id": i,
                    "list_id": members,
                    "status": "confirmed",
                    "soft_bounces": 0,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(1, n_subscribers + 1)
            ],
        )
        for o, name in enumerate(CAMPAIGNS, start=1):
            due = NOW - timedelta(days=2 * o)
            conn.execute(
                occurrences.insert().values(
                    id=o,
                    key=f"bench/{o}",
                    campaign=name,
                    due_at=due,
                    status="sent",
                    created_at=due,
                    updated_at=due,
                )
            )
    # Every campaign went to everyone: 1,000,000 ledger rows at the default sizes.
    send_id = 0
    rows = []
    for o in range(1, len(CAMPAIGNS) + 1):
        for sub in range(1, n_subscribers + 1):
            send_id += 1
            rows.append(
                {
                    "id": send_id,
                    "occurrence_id": o,
                    "subscriber_id": sub,
                    "email": f"p{sub}@example.org",
                    "language": LANGS[sub % 5],
                    "status": "sent",
                    "created_at": NOW,
                    "sent_at": NOW,
                }
            )
        if len(rows) >= 200_000:
            with store.write() as conn:
                insert_many(conn, sends, rows)
            rows = []
    if rows:
        with store.write() as conn:
            insert_many(conn, sends, rows)
    kinds = ["open"] * 60 + ["click"] * 35 + ["conversion"] * 5
    batch: list[tuple[Any, ...]] = []
    for _ in range(n_events):
        o = rng.randint(1, len(CAMPAIGNS))
        sub = rng.randint(1, n_subscribers)
        kind = rng.choice(kinds)
        at = NOW - timedelta(days=2 * o) + timedelta(minutes=rng.expovariate(1 / 600))
        batch.append(
            (
                kind,
                "pixel" if kind == "open" else "redirect",
                o,
                (o - 1) * n_subscribers + sub,
                sub,
                None,
                CAMPAIGNS[o - 1],
                LANGS[sub % 5],
                rng.choice(LABELS) or None if kind != "open" else None,
                rng.random() < 0.25 if kind in ("open", "click") else False,
                "",
                "",
                None,
                None,
                db_time(at, store.dialect),
            )
        )
        if len(batch) >= 100_000:
            with store.write() as conn:
                insert_events(conn, batch)
            batch = []
    if batch:
        with store.write() as conn:
            insert_events(conn, batch)
    with store.write() as conn:
        conn.exec_driver_sql("ANALYZE")


def stream(site: Site, audience: Audience, limit: int | None = None) -> tuple[int, float, int]:
    """(rows, seconds, tracemalloc peak bytes) streaming the audience (the first `limit` subscriber ids)."""
    tracemalloc.start()
    start = time.perf_counter()
    n = 0
    for person in stream_audience(site.store, audience, page=2000, now=NOW):
        if limit is not None and person.id > limit:
            break
        n += 1
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return n, elapsed, peak


def run_backend(name: str, url: str, args: argparse.Namespace, site_dir: Path) -> dict[str, Any]:
    site = Site.load(site_dir, environ={"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": "bench"})
    sync_lists(site)
    start = time.perf_counter()
    fill(site, args.events, args.subscribers)
    out: dict[str, Any] = {"backend": name, "fill_s": time.perf_counter() - start}
    audiences = {"plain list": PLAIN, "clicked, not signed": CLICKED_NOT_SIGNED, "did not open": NOT_OPENED}
    for label in audiences:
        out[label] = {"rate": [], "rows": 0, "peak": 0, "peak_quarter": 0}
    for _ in range(args.runs):
        for label, audience in audiences.items():
            rows, seconds, peak = stream(site, audience)
            result = out[label]
            result["rate"].append(rows / seconds)
            result["rows"], result["peak"] = rows, max(result["peak"], peak)
            _, _, quarter = stream(site, audience, limit=args.subscribers // 4)
            result["peak_quarter"] = max(result["peak_quarter"], quarter)
    site.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", ""))
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-segments-"))
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
        f"\nstreaming audiences: {args.subscribers:,} subscribers, {args.events:,} events, {args.runs} runs"
    )
    for r in results:
        print(f"{r['backend']:>10}: fill {r['fill_s']:.0f} s")
        base = statistics.median(r["plain list"]["rate"])
        for label in ("plain list", "clicked, not signed", "did not open"):
            res = r[label]
            rate = statistics.median(res["rate"])
            # Every segment reads the whole list: subscribers examined per second is the like-for-like
            # figure (the rows it yields are fewer).
            scanned = rate * args.subscribers / max(res["rows"], 1)
            runs = ", ".join(f"{x * args.subscribers / max(res['rows'], 1):,.0f}" for x in res["rate"])
            print(
                f"{'':>10}  {label:<20} {res['rows']:>7,} rows  {rate:>9,.0f} rows/s; "
                f"{scanned:>9,.0f} subscribers examined/s (runs {runs}), ratio to the list "
                f"{scanned / base:4.2f}"
            )
            print(
                f"{'':>10}  {'':<20} heap peak {res['peak'] / 1e6:5.2f} MB; "
                f"streaming a quarter of the ids {res['peak_quarter'] / 1e6:5.2f} MB"
            )


if __name__ == "__main__":
    main()
