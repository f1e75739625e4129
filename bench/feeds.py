"""Benchmark of the feeds stage: a full pull vs an all-304 pull, and a 5,000-item feed.

    .venv/bin/python bench/feeds.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Everything is served by a local HTTP server on 127.0.0.1 (port 0). The politeness delay between two
requests to one host (`feed_host_delay`) is set to 0 here: every feed is on the same host, and the
real default of 1 s would make the pull measure sleeping, not work.

Figures, each against a baseline measured in the same run:
1. 50 feeds x 100 items: first pull (fetch, parse, sanitise, store) vs a second pull where every
   answer is 304 Not Modified. The ratio should be well under 1/10.
2. one feed of 5,000 items: items parsed and stored per second, vs bare `feedparser.parse` of the
   same bytes (the floor any pipeline built on feedparser pays).
3. peak memory: the process's peak RSS (getrusage) before and after the 5,000-item pull.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from newsletter.feeds.pull import pull_feeds  # noqa: E402
from newsletter.site import Site  # noqa: E402

FEEDS, ITEMS, BIG = 50, 100, 5000


def feed_document(number: int, items: int) -> bytes:
    """A WordPress-like RSS feed with `items` posts of about 1.5 kB of HTML each."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>',
        f"<title>Hub feed {number}</title><link>https://hub.example.org/{number}/</link>",
        "<description>Bench</description><language>en-US</language>",
    ]
    for i in range(items):
        day = 1 + i % 28
        body = (
            f"<p>Update {i} of feed {number} on the <strong>Political Declaration</strong> negotiations, "
            f"with <a href='/p/{number}/{i}/'>a relative link</a> and <a href='https://hub.example.org/x'>"
            f"an absolute one</a>.</p>"
            * 6
            + "<ul><li>Zero draft</li><li>Revision 1</li><li>Revision 2</li></ul>"
            + f"<p><img src='https://hub.example.org/img/{i}.png' alt='chart' width='600'></p>"
        )
        parts.append(
            f"<item><title>Post {i} of feed {number} — déclaration, декларация</title>"
            f"<link>https://hub.example.org/{number}/p/{i}/</link>"
            f'<guid isPermaLink="false">https://hub.example.org/?p={number * 100000 + i}</guid>'
            f"<dc:creator><![CDATA[Editor {i % 7}]]></dc:creator>"
            f"<pubDate>Mon, {day:02d} May 2021 09:{i % 60:02d}:00 +0000</pubDate>"
            f"<category><![CDATA[Category {i % 5}]]></category>"
            f"<description><![CDATA[Summary of update {i} [&#8230;]]]></description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    parts.append("</channel></rss>")
    return "\n".join(parts).encode("utf-8")


class Server:
    """Serves path -> bytes with a strong ETag, answering 304 to a matching If-None-Match."""

    def __init__(self, documents: dict[str, bytes]):
        tags = {path: '"' + hashlib.sha256(body).hexdigest()[:16] + '"' for path, body in documents.items()}
        self.counts = {200: 0, 304: 0}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                body, tag = documents[self.path], tags[self.path]
                if self.headers.get("If-None-Match") == tag:
                    outer.counts[304] += 1
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.counts[200] += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", tag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_site(root: Path, db_url: str, urls: dict[str, str]) -> Site:
    lines = ['[site]\nlanguages = ["en", "fr", "es", "ru", "pt"]\n']
    for name, url in urls.items():
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n')
    root.mkdir(parents=True, exist_ok=True)
    (root / "newsletter.toml").write_text("\n".join(lines), encoding="utf-8")
    environ = {
        "NEWSLETTER_DATABASE_URL": db_url,
        "NEWSLETTER_SECRET_KEY": "bench-secret-key-0123456789",
        "NEWSLETTER_FEED_HOST_DELAY": "0",
    }
    return Site.load(root, environ=environ)


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench_backend(label: str, db_url: str, tmp: Path, server: Server, baseline_items_s: float) -> None:
    print(f"\n== {label}")
    # The big feed first, so the process's peak RSS before and after brackets this pull alone.
    big_site = make_site(
        tmp / f"{label}-big", db_url.replace("many.db", "big.db"), {"big": server.url("/big")}
    )
    big_site.store  # migrate outside the timings  # noqa: B018
    before = rss_mib()
    big_s, big = timed(lambda: pull_feeds(big_site, backfill=True))
    after = rss_mib()
    assert big[0].status == "ok" and big[0].new == BIG, big
    big_site.close()
    items_s = BIG / big_s
    print(
        f"1 feed x {BIG} items: {items_s:,.0f} items/s fetched+parsed+sanitised+stored ({big_s:.2f} s) = "
        f"{items_s / baseline_items_s:.2f}x the bare feedparser rate; "
        f"peak RSS {before:.0f} -> {after:.0f} MiB"
    )

    many = {f"feed-{n:02d}": server.url(f"/feed/{n}") for n in range(FEEDS)}
    site = make_site(tmp / f"{label}-many", db_url, many)
    site.store  # noqa: B018
    first_s, first = timed(lambda: pull_feeds(site))
    assert all(r.status == "ok" for r in first), [r for r in first if r.status != "ok"]
    assert sum(r.seeded for r in first) == FEEDS * ITEMS
    second_s, second = timed(lambda: pull_feeds(site))
    assert all(r.status == "not_modified" for r in second)
    site.close()
    print(
        f"{FEEDS} feeds x {ITEMS} items: first pull {first_s:.2f} s "
        f"({FEEDS * ITEMS / first_s:,.0f} items/s); all-304 pull {second_s:.3f} s; "
        f"ratio 304/first = {second_s / first_s:.4f} (1/{first_s / second_s:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (a scratch schema is used)")
    args = parser.parse_args()

    documents = {f"/feed/{n}": feed_document(n, ITEMS) for n in range(FEEDS)}
    documents["/big"] = feed_document(999, BIG)
    print(
        f"feeds bench: politeness delay feed_host_delay=0 (all feeds on one local host); "
        f"{FEEDS} x {len(documents['/feed/0']) / 1024:.0f} kB feeds, "
        f"big feed {len(documents['/big']) / 2**20:.1f} MiB"
    )

    # Baseline for throughput: bare feedparser (defaults: its sanitiser and link resolution) on the
    # same bytes, no fetch, no second sanitiser, no store.
    base_s, parsed = timed(
        lambda: feedparser.parse(documents["/big"], response_headers={"content-type": "application/rss+xml"})
    )
    assert len(parsed.entries) == BIG
    print(
        f"baseline: bare feedparser.parse of the {BIG}-item feed: "
        f"{BIG / base_s:,.0f} items/s ({base_s:.2f} s)"
    )

    server = Server(documents)
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            bench_backend("sqlite", f"sqlite:///{tmp / 'many.db'}", tmp, server, BIG / base_s)
            if args.postgres:
                bench_postgres(args.postgres, tmp, server, BIG / base_s)
    finally:
        server.close()
    print(f"\npeak RSS of the whole bench process: {rss_mib():.0f} MiB")


def bench_postgres(url: str, tmp: Path, server: Server, baseline_items_s: float) -> None:
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        scoped = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
        bench_backend("postgresql", scoped, tmp, server, baseline_items_s)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()
