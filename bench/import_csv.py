"""Benchmark: `subscribers import` of a 100,000-row CSV vs a bare executemany of the same rows.

    .venv/bin/python bench/import_csv.py [--rows 100000] [--postgres URL]

Prints rows/s for the import and for the raw insert into the same table in the same run (the ratio is
the import's overhead: validation, dedupe, subscriptions and consent records), and the import's peak
Python memory (tracemalloc) at several file sizes, to show it is flat in the file's size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.audience.importer import import_csv  # noqa: E402
from newsletter.audience.lists import sync_lists  # noqa: E402
from newsletter.site import Site  # noqa: E402
from newsletter.store import Store, now_utc  # noqa: E402
from tests.conftest import copy_site, pg_schema_url  # noqa: E402

LANGS = ["en", "fr", "es", "ru", "pt"]
ZONES = ["Europe/Paris", "America/New_York", "Europe/Moscow", "America/Sao_Paulo", "Africa/Nairobi"]


def make_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name", "language", "timezone", "country", "organisation"])
        for i in range(rows):
            w.writerow(
                [
                    f"person{i}@network{i % 400}.org",
                    f"Person {i}",
                    LANGS[i % 5],
                    ZONES[i % 5],
                    ["FR", "US", "UA", "BR", "KE"][i % 5],
                    f"Org {i % 1000}",
                ]
            )


@contextmanager
def fresh_url(kind: str, tmp: Path, pg: str | None) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
        return
    assert pg
    with pg_schema_url(pg, prefix="bench_") as url:
        yield url


CPU: dict[str, float] = {}  # CPU seconds of the last import per backend (SQLite: all the work is ours)


def run_import(
    kind: str, tmp: Path, csv_path: Path, pg: str | None, trace: bool = False
) -> tuple[float, int]:
    with fresh_url(kind, tmp, pg) as url:
        return _import(kind, url, tmp, csv_path, trace)


def _import(kind: str, url: str, tmp: Path, csv_path: Path, trace: bool) -> tuple[float, int]:
    site_dir = copy_site(tmp / uuid.uuid4().hex)
    site = Site.load(site_dir, environ={"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": "bench" * 8})
    sync_lists(site)
    if trace:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    report = import_csv(site, csv_path, "members", consent="bench rows", status="confirmed")
    elapsed = time.perf_counter() - t0
    CPU[kind] = time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    assert report.accepted > 0 and not report.rejected, report.rejected[:3]
    site.close()
    shutil.rmtree(site_dir)
    return elapsed, peak


def run_raw(kind: str, tmp: Path, csv_path: Path, pg: str | None) -> float:
    """The floor: the driver's own executemany of the same rows, already in database form."""
    with fresh_url(kind, tmp, pg) as url:
        return _raw(kind, url, csv_path)


def _raw(kind: str, url: str, csv_path: Path) -> float:
    store = Store(url)
    now = now_utc()
    stamp: object = now.replace(tzinfo=None).isoformat(sep=" ") if kind == "sqlite" else now
    mark = "?" if kind == "sqlite" else "%s"
    with csv_path.open(encoding="utf-8", newline="") as fh:
        rows = [
            (
                r["email"],
                r["name"],
                r["language"],
                r["timezone"],
                r["country"],
                json.dumps({"organisation": r["organisation"]}),
                stamp,
                stamp,
            )
            for r in csv.DictReader(fh)
        ]
    sql = (
        "INSERT INTO subscribers (email, name, language, timezone, country, attributes, created_at, "
        f"updated_at) VALUES ({', '.join([mark] * 8)})"
    )
    with store.write() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        t0 = time.perf_counter()
        cursor.executemany(sql, rows)
        elapsed = time.perf_counter() - t0
        cursor.close()
    store.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        csv_path = tmp / "people.csv"
        make_csv(csv_path, args.rows)
        kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
        print(f"import of {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB CSV)")
        for kind in kinds:
            imp, _ = run_import(kind, tmp, csv_path, args.postgres)
            raw = run_raw(kind, tmp, csv_path, args.postgres)
            print(
                f"  {kind:10s} import {args.rows / imp:9,.0f} rows/s ({imp:.2f} s wall; "
                f"{args.rows / CPU[kind]:,.0f} rows per CPU-second of this process) | bare executemany "
                f"{args.rows / raw:9,.0f} rows/s ({raw:.2f} s) | import/raw time ratio {imp / raw:.2f}"
            )
        print("peak Python memory of the import (tracemalloc, SQLite):")
        for rows in (args.rows // 4, args.rows, args.rows * 2):
            path = tmp / f"mem{rows}.csv"
            make_csv(path, rows)
            _, peak = run_import("sqlite", tmp, path, None, trace=True)
            print(f"  {rows:9,} rows ({path.stat().st_size / 1e6:5.1f} MB): peak {peak / 1e6:6.1f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
