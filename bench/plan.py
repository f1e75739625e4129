"""`plan` for 200 events x 5 sessions x 4 reminders and 50,000 subscribers in 40 timezones.

    .venv/bin/python bench/plan.py [--events 200] [--subscribers 50000] [--repeat 5]

Builds a site in a temp folder (a generated schedules.yaml, a SQLite store with the subscribers),
then times, best of --repeat, with peak Python memory (tracemalloc) of one run:
  - plan():          the pure function, audience sizes and timezones given (4,000 sends; two of the four
                     reminders send at a local hour or outside quiet hours, so each is spread over 40 zones);
  - plan_for_site(): what `newsletter plan` does after parsing: audiences counted in the store, plan(),
                     stored occurrences laid over;
  - load_schedules(): parsing and validating the generated file (reported, not part of the ratio).
Baselines measured in the same run: for plan(), a bare loop computing each (session, reminder)'s due
time, and that loop plus converting each spread send into each of the 40 zones (the irreducible part
of spreading); for plan_for_site(), loading the 50,000 subscribers' language and timezone and iterating them
once plus that bare loop. Prints each ratio (ours / baseline).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.audience.lists import sync_lists  # noqa: E402
from newsletter.schedule.inputs import audience_inputs  # noqa: E402
from newsletter.schedule.load import load_schedules  # noqa: E402
from newsletter.schedule.plan import plan  # noqa: E402
from newsletter.schedule.sync import plan_for_site  # noqa: E402
from newsletter.site import Site  # noqa: E402
from newsletter.store.tables import lists, subscribers, subscriptions  # noqa: E402

LANGUAGES = ("en", "fr", "es", "ru", "pt")
SESSION_ZONES = {
    "en": "Europe/London",
    "fr": "Africa/Abidjan",
    "es": "America/Mexico_City",
    "ru": "Europe/Moscow",
    "pt": "America/Sao_Paulo",
}
ZONES = (
    "UTC Europe/London Europe/Paris Europe/Berlin Europe/Madrid Europe/Moscow Europe/Kyiv Europe/Istanbul "
    "Africa/Abidjan Africa/Dakar Africa/Lagos Africa/Nairobi Africa/Johannesburg Africa/Cairo Asia/Almaty "
    "Asia/Tashkent Asia/Tbilisi Asia/Yerevan Asia/Baku Asia/Dubai Asia/Karachi Asia/Kolkata Asia/Dhaka "
    "Asia/Bangkok Asia/Jakarta Asia/Manila Asia/Tokyo Australia/Sydney Pacific/Auckland Pacific/Honolulu "
    "America/Anchorage America/Los_Angeles America/Denver America/Mexico_City America/Chicago "
    "America/New_York America/Bogota America/Lima America/Sao_Paulo America/Argentina/Buenos_Aires"
).split()
REMINDERS = (("14d", ""), ("7d", ""), ("1d", '    local_time: "09:00"\n'), ("1h", ""))
START = datetime(2031, 1, 6, tzinfo=UTC)


def schedules_yaml(n_events: int) -> str:
    out = ["events:"]
    for i in range(n_events):
        day = START + timedelta(days=20 + i // 2, hours=(i % 2) * 3)
        out.append(f"  - id: ev{i}\n    kind: webinar\n    title: {{en: Event {i}}}\n")
        out.append(f"    start: '{day:%Y-%m-%dT%H:%M}'\n    timezone: UTC\n    sessions:")
        for j, lang in enumerate(LANGUAGES):
            at = day + timedelta(hours=j)
            out.append(
                f"      - {{id: {lang}, language: {lang}, start: '{at:%Y-%m-%dT%H:%M}', timezone: UTC}}"
            )
    out.append("campaigns:")
    for i in range(n_events):
        for offset, extra in REMINDERS:
            quiet = '    quiet_hours: ["22:00", "07:00"]\n' if offset == "14d" else ""
            out.append(
                f"  - id: ev{i}-{offset}\n    template: reminder\n    audience: {{lists: [members]}}\n"
                f"    trigger: {{before: {offset}, event: ev{i}, per_session: true}}\n{extra}{quiet}"
            )
    return "\n".join(out) + "\n"


def make_site(folder: Path, n_events: int, n_subscribers: int) -> Site:
    shutil.copytree(REPO / "lists", folder / "lists")
    shutil.copy2(REPO / "newsletter.toml", folder / "newsletter.toml")
    (folder / "templates").mkdir()
    (folder / "templates" / "reminder.mjml").write_text("<mjml></mjml>\n", encoding="utf-8")
    (folder / "schedules.yaml").write_text(schedules_yaml(n_events), encoding="utf-8")
    site = Site.load(folder, environ={"NEWSLETTER_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}"})
    sync_lists(site)
    rng = random.Random(5)
    now = datetime.now(UTC)
    with site.store.write() as conn:
        list_id = conn.execute(select(lists.c.id).where(lists.c.slug == "members")).scalar_one()
        people = [
            {
                "id": i + 1,
                "email": f"p{i}@example.org",
                "name": "",
                "language": rng.choice(LANGUAGES),
                "timezone": ZONES[i % len(ZONES)],
                "country": "",
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n_subscribers)
        ]
        conn.execute(insert(subscribers), people)
        conn.execute(
            insert(subscriptions),
            [
                {"subscriber_id": p["id"], "list_id": list_id, "status": "confirmed"}
                | {"created_at": now, "updated_at": now}
                for p in people
            ],
        )
    return site


def best(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return min(times), result


def peak(func: Callable[[], Any]) -> int:
    tracemalloc.start()
    func()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        site = make_site(folder, args.events, args.subscribers)
        load_time, schedules = best(lambda: load_schedules(site), 1)
        now = START
        days = 400
        sizes, zones = audience_inputs(site.store, schedules)

        def pure() -> list[Any]:
            return plan(
                schedules,
                audience_sizes=sizes,
                audience_timezones=zones,
                now=now,
                days=days,
                fallback=site.fallback_chain,
            )

        def bare_loop() -> list[tuple[str, datetime]]:
            out = []
            for campaign in schedules.campaigns.values():
                event = schedules.events[campaign.trigger.event or ""]
                for session in event.sessions:
                    out.append(
                        (campaign.id + session.id, session.start - (campaign.trigger.offset or timedelta()))
                    )
            return sorted(out, key=lambda pair: pair[1])

        zone_names = list(zones[next(iter(zones))]) if zones else []
        spread_ids = {c.id for c in schedules.campaigns.values() if c.local_time or c.quiet_hours}

        def bare_with_zones() -> int:
            """The bare loop plus the irreducible part of spreading: each spread send seen in each zone."""
            count = 0
            for key, due in bare_loop():
                if key[:-2] in spread_ids:
                    for tz in zone_names:
                        count += due.astimezone(ZoneInfo(tz)).hour
            return count

        def whole() -> list[Any]:
            return plan_for_site(site, now, days=days, schedules=schedules)

        def load_and_iterate() -> int:
            with site.store.read() as conn:
                rows = conn.execute(select(subscribers.c.language, subscribers.c.timezone)).all()
            seen: dict[tuple[str, str], int] = {}
            for row in rows:
                seen[(row.language, row.timezone)] = seen.get((row.language, row.timezone), 0) + 1
            return len(bare_loop()) + len(seen)

        t_pure, sends = best(pure, args.repeat)
        t_bare, pairs = best(bare_loop, args.repeat)
        t_zones, _ = best(bare_with_zones, args.repeat)
        t_whole, _ = best(whole, args.repeat)
        t_base, _ = best(load_and_iterate, args.repeat)
        assert len(sends) == len(pairs) == args.events * 5 * len(REMINDERS), (len(sends), len(pairs))
        spread = [s for s in sends if s.last_at]
        print(
            f"{args.events} events x 5 sessions x {len(REMINDERS)} reminders = {len(sends)} sends; "
            f"{args.subscribers} subscribers in {len(ZONES)} timezones; {len(spread)} sends spread over zones"
        )
        print(f"load_schedules (parse + validate the file): {load_time * 1000:8.1f} ms")
        print(
            f"plan() pure:        {t_pure * 1000:8.1f} ms  peak {peak(pure) / 1e6:6.1f} MB   "
            f"baseline bare loop {t_bare * 1000:7.1f} ms  peak {peak(bare_loop) / 1e6:5.1f} MB  "
            f"ratio {t_pure / t_bare:5.1f}x"
        )
        print(
            f"                                               baseline bare loop + each spread send in each "
            f"zone {t_zones * 1000:7.1f} ms  ratio {t_pure / t_zones:5.1f}x"
        )
        print(
            f"plan_for_site():    {t_whole * 1000:8.1f} ms  peak {peak(whole) / 1e6:6.1f} MB   "
            f"baseline load+iterate {t_base * 1000:7.1f} ms  peak {peak(load_and_iterate) / 1e6:5.1f} MB  "
            f"ratio {t_whole / t_base:5.1f}x"
        )
        site.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
