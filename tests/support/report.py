"""Fixtures for the report tests (registered in tests/conftest.py).

`seed_campaign` writes a realistic sent campaign straight into the store (occurrence, links,
subscribers, send ledger, tracking events) and returns the rows, so tests can work out the expected
figures in plain Python, independently of the rollup SQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsletter.report.rollup import SIGN_ON
from newsletter.site import Site
from newsletter.store import Store
from newsletter.store.tables import events, links, occurrences, sends, subscribers
from tests.support.track import LiveServer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "admin"
SENT_AT = datetime(2021, 3, 24, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@dataclass
class Seeded:
    occurrence_id: int
    campaign: str
    sends: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def unique(
        self, kind: str, *, human: bool = False, label: str | None = None, language: str | None = None
    ) -> int:
        """Distinct send rows with an event of `kind` (the expected figure, computed without SQL)."""
        return len(
            {
                e["send_id"]
                for e in self.events
                if e["kind"] == kind
                and not (human and e["machine"])
                and (label is None or e["label"] == label)
                and (language is None or e["language"] == language)
            }
        )

    def raw(self, kind: str, language: str | None = None) -> int:
        return sum(
            1 for e in self.events if e["kind"] == kind and (language is None or e["language"] == language)
        )

    def sent(self, language: str | None = None) -> int:
        return sum(
            1 for s in self.sends if s["status"] == "sent" and (language is None or s["language"] == language)
        )


def seed_campaign(
    store: Store,
    *,
    campaign: str = "sign-on-push",
    languages: tuple[str, ...] = ("en", "fr", "es"),
    people: int = 90,
    sent_at: datetime = SENT_AT,
    seed: int = 8,
    first_subscriber: int = 0,
) -> Seeded:
    """A sent occurrence of `campaign` with its ledger and a few hundred tracking events."""
    rng = random.Random(seed)
    now = sent_at
    with store.write() as conn:
        occ_id = conn.execute(
            occurrences.insert().values(
                key=f"{campaign}@{sent_at.isoformat()}",
                campaign=campaign,
                event_id="hlm-2021",
                due_at=sent_at,
                status="sent",
                languages=list(languages),
                template="announcement",
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        out = Seeded(int(occ_id), campaign)
        link_ids: dict[str, dict[str, int]] = {}
        for lang in languages:
            link_ids[lang] = {}
            for label, url in (
                (SIGN_ON, "https://hub.example.org/sign"),
                ("hub-news", "https://hub.example.org/news"),
            ):
                row = {
                    "occurrence_id": occ_id,
                    "campaign": campaign,
                    "language": lang,
                    "url": f"{url}?lang={lang}&utm_campaign={campaign}",
                    "label": label,
                    "created_at": now,
                }
                row["id"] = conn.execute(links.insert().values(**row)).inserted_primary_key[0]
                link_ids[lang][label] = int(row["id"])
                out.links.append(row)
        for i in range(people):
            lang = languages[i % len(languages)]
            email = f"person{first_subscriber + i}@example.org"
            sub_id = conn.execute(
                subscribers.insert().values(
                    email=email,
                    name=f"Person {i}",
                    language=lang,
                    timezone="Europe/Paris",
                    country="FR",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            status = "failed" if i % 30 == 29 else "sent"
            send = {
                "occurrence_id": occ_id,
                "subscriber_id": sub_id,
                "email": email,
                "language": lang,
                "status": status,
                "created_at": now,
                "sent_at": now if status == "sent" else None,
            }
            send["id"] = conn.execute(sends.insert().values(**send)).inserted_primary_key[0]
            out.sends.append(send)
            if status != "sent":
                continue
            out.events += _events_for(rng, send, link_ids[lang], campaign, sent_at)
        rng.shuffle(out.events)  # arrival order is not send order
        conn.execute(events.insert(), out.events)
    return out


def _events_for(
    rng: random.Random, send: dict[str, Any], link_ids: dict[str, int], campaign: str, t0: datetime
) -> list[dict[str, Any]]:
    def ev(
        kind: str, minutes: float, machine: bool = False, label: str | None = None, source: str = "sendgrid"
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "source": source,
            "occurrence_id": send["occurrence_id"],
            "send_id": send["id"],
            "subscriber_id": send["subscriber_id"],
            "link_id": link_ids.get(label) if label else None,
            "campaign": campaign,
            "language": send["language"],
            "label": label,
            "machine": machine,
            "user_agent": "",
            "ip": "",
            "at": t0 + timedelta(minutes=minutes),
        }

    out = [ev("processed", 0.1)]
    fate = rng.random()
    if fate < 0.05:
        return out + [ev("bounce", 1)]
    if fate < 0.08:
        return out + [ev("dropped", 0.2)]
    out.append(ev("delivered", 0.5))
    if rng.random() < 0.2:  # Apple Mail Privacy Protection loads the pixel at once
        out.append(ev("open", 1, machine=True, source="pixel"))
    if rng.random() < 0.6:
        opened = rng.uniform(5, 60 * 30)
        out += [ev("open", opened + k * 30, source="pixel") for k in range(rng.randint(1, 3))]
        if rng.random() < 0.5:
            label = SIGN_ON if rng.random() < 0.6 else "hub-news"
            out += [
                ev("click", opened + 2 + k, label=label, source="redirect") for k in range(rng.randint(1, 2))
            ]
            if label == SIGN_ON and rng.random() < 0.5:
                out.append(ev("conversion", opened + 10, label=SIGN_ON, source="form"))
        if rng.random() < 0.05:
            out.append(ev("unsubscribe", opened + 20, source="form"))
    if rng.random() < 0.1:  # a security scanner fetches every link within a second of delivery
        out += [ev("click", 0.55, machine=True, label=lbl, source="redirect") for lbl in link_ids]
    if rng.random() < 0.02:
        out.append(ev("spamreport", 90))
    return out


# ---------------------------------------------------------------- live server and browser
# The server and the browser come from the track stage's fixtures (tests/support/track.py):
# `live_server` (uvicorn on 127.0.0.1, a free port) and `browser` (headless Debian Chromium).


@pytest.fixture
def admin_server(admin_site: AdminSite, live_server: Callable[[Any], LiveServer]) -> LiveServer:
    """The whole app (public pages and /admin) for the dashboard's site."""
    return live_server(admin_site.site)


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under artifacts/admin/ (git-ignored) for people to look at.

    Pages with sandboxed frames take `full_page=False`: Chromium paints out-of-process frames only
    inside the viewport.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# ---------------------------------------------------------------- the dashboard's site

AS_OF = datetime(2021, 4, 1, 9, 0, tzinfo=UTC)  # the example site's spring 2021, before the webinar


@dataclass
class AdminSite:
    site: Site
    seeded: Seeded
    staff: str = "staff@example.org"
    organiser: str = "organiser@example.org"
    password: str = PASSWORD


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD hashed once per session (argon2 is slow on purpose; users.add_user has its own tests)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)


@pytest.fixture
def admin_site(site: Site, password_hash: str) -> AdminSite:
    """The example site with a sent campaign, a staff user, an organiser, its spring 2021 occurrences."""
    from newsletter.schedule.sync import reconcile
    from newsletter.store.tables import users

    seeded = seed_campaign(site.store, languages=site.languages, people=150)
    # An earlier campaign, so the comparison has something to compare.
    seed_campaign(
        site.store,
        campaign="declaration-launch",
        languages=site.languages,
        people=100,
        seed=3,
        sent_at=SENT_AT - timedelta(days=9),
        first_subscriber=1000,
    )
    subscribe_all(site.store, "members")
    with site.store.write() as conn:
        conn.execute(
            users.insert(),
            [
                {
                    "email": f"{role}@example.org",
                    "role": role,
                    "password_hash": password_hash,
                    "created_at": SENT_AT,
                }
                for role in ("staff", "organiser")
            ],
        )
    reconcile(site, AS_OF)
    return AdminSite(site, seeded)


def subscribe_all(store: Store, slug: str) -> None:
    """Confirm every subscriber on the list `slug` (so the plan has audiences to count)."""
    from sqlalchemy import select

    from newsletter.store.tables import lists, subscriptions

    with store.write() as conn:
        list_id = conn.scalar(select(lists.c.id).where(lists.c.slug == slug))
        ids = conn.scalars(select(subscribers.c.id)).all()
        conn.execute(
            subscriptions.insert(),
            [
                {
                    "subscriber_id": i,
                    "list_id": list_id,
                    "status": "confirmed",
                    "soft_bounces": 0,
                    "created_at": SENT_AT,
                    "updated_at": SENT_AT,
                }
                for i in ids
            ],
        )
