"""Report figures: the rollups agree with the raw events on both backends, incrementally too."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from newsletter.errors import InputError
from newsletter.report import compare, figures, rollup
from newsletter.report.rollup import SIGN_ON
from newsletter.store import Store
from newsletter.store.tables import events, report_counts, report_sends
from tests.support.report import SENT_AT, Seeded, seed_campaign


def _check(report: figures.CampaignReport, seeded: Seeded, languages: tuple[str, ...]) -> None:
    t = report.total
    assert t.sent == seeded.sent() > 0
    assert t.delivered == seeded.unique("delivered") > 0
    assert t.bounced == seeded.unique("bounce") > 0
    assert t.dropped == seeded.unique("dropped")
    assert t.opens == seeded.unique("open", human=True) > 0
    assert t.opens_all == seeded.unique("open") > t.opens
    assert t.opens_raw == seeded.raw("open") > t.opens_all
    assert t.clicks == seeded.unique("click", human=True) > 0
    assert t.clicks_all == seeded.unique("click") > t.clicks
    assert t.clicks_raw == seeded.raw("click")
    assert t.sign_on == seeded.unique("click", human=True, label=SIGN_ON) > 0
    assert t.conversions == seeded.unique("conversion")
    assert t.unsubscribes == seeded.unique("unsubscribe")
    assert t.spam_reports == seeded.unique("spamreport")
    assert t.click_rate == pytest.approx(t.clicks / t.delivered)
    assert t.click_to_open == pytest.approx(t.clicks / t.opens)
    assert sorted(report.languages) == sorted(languages)
    for lang in languages:
        f = report.languages[lang]
        assert f.sent == seeded.sent(lang)
        assert f.opens == seeded.unique("open", human=True, language=lang)
        assert f.sign_on == seeded.unique("click", human=True, label=SIGN_ON, language=lang)
    for link in report.links:
        mine = [e for e in seeded.events if e["link_id"] == link.id and e["kind"] == "click"]
        assert link.clicks_raw == len(mine)
        assert link.clicks == len({e["send_id"] for e in mine if not e["machine"]})
    assert report.links[0].sign_on  # sign-on links come first
    assert sum(p["opens"] for p in report.timeline) == t.opens
    assert sum(p["clicks"] for p in report.timeline) == t.clicks


def test_figures_match_the_events(store: Store) -> None:
    seeded = seed_campaign(store)
    folded = rollup.refresh_all(store)
    assert folded == len(seeded.events)
    report = figures.campaign_report(store, [seeded.occurrence_id])
    _check(report, seeded, ("en", "fr", "es"))
    assert report.total.conversions > 0
    assert report.sends == {"sent": seeded.sent(), "failed": len(seeded.sends) - seeded.sent()}
    # The occurrence is over, so its ledger was counted once and kept; the next view reads that.
    with store.read() as conn:
        assert conn.scalar(select(func.sum(report_sends.c.n))) == len(seeded.sends)
    again = figures.campaign_report(store, [seeded.occurrence_id])
    assert again.sends == report.sends and again.total.sent == report.total.sent
    # Hours after sending: the first point is the sending hour, opens keep coming for a day.
    assert report.timeline[0]["at"] == SENT_AT.isoformat()
    assert len(report.timeline) > 20


def test_refresh_is_incremental_and_chunked(store: Store) -> None:
    first = seed_campaign(store, people=60)
    half = len(first.events) // 3
    steps = []
    while True:
        step = rollup.refresh(store, chunk=half)
        steps.append(step)
        if not step.pending:
            break
    assert len(steps) >= 3
    assert rollup.refresh(store).folded == 0  # nothing new: nothing to do
    # Events arrive later for the same occurrence (a second wave of opens and clicks) ...
    second = seed_campaign(store, campaign="digest", people=45, seed=9, first_subscriber=1000)
    rollup.refresh(store)
    report = figures.campaign_report(store, [first.occurrence_id])
    _check(report, first, ("en", "fr", "es"))
    _check(figures.campaign_report(store, [second.occurrence_id]), second, ("en", "fr", "es"))
    # ... and a repeated open of someone already counted raises raw counts, not unique ones.
    repeat = dict(next(e for e in first.events if e["kind"] == "open" and not e["machine"]))
    repeat["at"] = repeat["at"] + timedelta(hours=2)
    with store.write() as conn:
        conn.execute(events.insert(), [repeat])
    first.events.append(repeat)
    rollup.refresh(store)
    again = figures.campaign_report(store, [first.occurrence_id])
    assert again.total.opens == report.total.opens
    assert again.total.opens_raw == report.total.opens_raw + 1
    with store.read() as conn:
        assert conn.scalar(select(func.count()).select_from(report_counts)) < len(first.events) + len(
            second.events
        )


def test_resolve_campaign_names_keys_and_ids(store: Store) -> None:
    a = seed_campaign(store, people=9)
    b = seed_campaign(store, people=9, sent_at=SENT_AT + timedelta(days=7), first_subscriber=100)
    assert figures.resolve(store, str(a.occurrence_id)) == [a.occurrence_id]
    assert figures.resolve(store, "sign-on-push") == [a.occurrence_id, b.occurrence_id]
    with pytest.raises(InputError, match="sign-on-push"):
        figures.resolve(store, "nope")


def test_compare_sign_on_across_campaigns(store: Store) -> None:
    a = seed_campaign(store, people=60)
    b = seed_campaign(
        store,
        campaign="deadline-reminder",
        people=60,
        seed=3,
        first_subscriber=500,
        sent_at=SENT_AT + timedelta(days=3),
    )
    rollup.refresh_all(store)
    data = compare.compare(store)
    assert data["languages"] == ["en", "es", "fr"]
    by_id = {row["id"]: row for row in data["occurrences"]}
    for seeded in (a, b):
        row = by_id[seeded.occurrence_id]
        for lang in ("en", "fr", "es"):
            cell = row["languages"][lang]
            assert cell["sign_on"] == seeded.unique("click", human=True, label=SIGN_ON, language=lang)
            assert cell["sent"] == seeded.sent(lang)
    total_daily = sum(sum(v for k, v in day.items() if k != "day") for day in data["daily"])
    assert total_daily == sum(r["sign_on"] for r in data["occurrences"])
    recent = figures.recent(store)
    assert [r["id"] for r in recent] == [b.occurrence_id, a.occurrence_id]
    assert recent[0]["figures"].sign_on == b.unique("click", human=True, label=SIGN_ON)


def test_concurrent_refreshes_count_each_event_once(store: Store) -> None:
    """Several app instances refreshing while the tracker writes: every event folded exactly once."""
    seeded = seed_campaign(store, people=60)
    late = [dict(e, at=e["at"] + timedelta(hours=1)) for e in seeded.events if e["kind"] in ("open", "click")]
    errors: list[BaseException] = []

    def refresher() -> None:
        try:
            for _ in range(15):
                rollup.refresh(store, chunk=40)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def tracker() -> None:
        try:
            for start in range(0, len(late), 25):
                with store.write() as conn:
                    conn.execute(events.insert(), late[start : start + 25])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=refresher) for _ in range(3)] + [threading.Thread(target=tracker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    rollup.refresh_all(store)
    seeded.events += late
    report = figures.campaign_report(store, [seeded.occurrence_id])
    assert report.total.opens_raw == seeded.raw("open")
    assert report.total.clicks_raw == seeded.raw("click")
    assert report.total.opens == seeded.unique("open", human=True)
    with store.read() as conn:
        assert rollup.watermark(conn) == conn.scalar(select(func.max(events.c.id)))
