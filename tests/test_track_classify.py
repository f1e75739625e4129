"""Pure parts of tracking: machine opens, bot clicks, IP anonymisation, page language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from newsletter.track import classify
from newsletter.track.ip import anonymize
from newsletter.web.i18n import negotiate, translations

T0 = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36"


def test_machine_opens() -> None:
    assert classify.machine_open(HUMAN_UA, "198.51.100.7", sg_machine_open=True)
    assert classify.machine_open("Mozilla/5.0", "198.51.100.7")  # Apple's proxy user agent
    assert classify.machine_open(HUMAN_UA, "17.58.1.2")  # Apple's network
    assert not classify.machine_open(HUMAN_UA, "198.51.100.7")
    assert not classify.machine_open(HUMAN_UA, "not-an-ip")


@pytest.mark.parametrize(
    "method,ua,delay,bot",
    [
        ("GET", HUMAN_UA, 60, False),
        ("HEAD", HUMAN_UA, 60, True),
        ("GET", "", 60, True),
        ("GET", "Mozilla/5.0 (compatible; Barracuda Sentinel)", 60, True),
        ("GET", "python-requests/2.31", 60, True),
        ("GET", HUMAN_UA, 2, True),  # within seconds of delivery
    ],
)
def test_bot_clicks(method: str, ua: str, delay: int, bot: bool) -> None:
    assert classify.bot_click(method, ua, T0 + timedelta(seconds=delay), T0) is bot


def test_burst_of_every_link_is_flagged_but_a_person_reading_is_not() -> None:
    burst = [classify.Click(1, link, T0 + timedelta(milliseconds=100 * link)) for link in (1, 2, 3)]
    slow = [classify.Click(2, link, T0 + timedelta(seconds=30 * link)) for link in (1, 2, 3)]
    partial = [classify.Click(3, link, T0) for link in (1, 2)]
    flagged = classify.burst_sends(burst + slow + partial, {1: 3, 2: 3, 3: 3})
    assert flagged == {1}


def test_ip_anonymisation() -> None:
    assert anonymize("203.0.113.77", "truncate") == "203.0.113.0/24"
    assert anonymize("2001:db8:abcd:12::1", "truncate") == "2001:db8:abcd::/48"
    assert anonymize("::ffff:203.0.113.77", "truncate") == "203.0.113.0/24"
    hashed = anonymize("203.0.113.77", "hash", b"key")
    assert len(hashed) == 32 and "203" not in hashed
    assert hashed != anonymize("203.0.113.77", "hash", b"other key")
    assert anonymize("203.0.113.77", "none") == ""
    assert anonymize("garbage", "truncate") == ""


def test_page_language_negotiation_and_catalogs() -> None:
    langs = ("en", "fr", "es", "ru", "pt")
    assert negotiate("pt-BR,pt;q=0.9,en;q=0.5", langs, "en") == "pt"
    assert negotiate("de-DE,ru;q=0.4,fr;q=0.8", langs, "en") == "fr"
    assert negotiate("", langs, "en") == "en"
    assert translations("es").gettext("Unsubscribe") == "Darse de baja"
    assert translations("ru").gettext("Subscribe") == "Подписаться"


def test_bulk_insert_columns_match_the_events_table() -> None:
    from newsletter.store.tables import events
    from newsletter.track.events import COLUMNS, HIT_COLUMNS

    assert set(COLUMNS) == {c.name for c in events.columns} - {"id"}
    assert set(HIT_COLUMNS) < set(COLUMNS)
    assert all(events.c[c].nullable for c in set(COLUMNS) - set(HIT_COLUMNS))


def test_check_reports_a_bad_webhook_key(site_dir: Any, site_env: dict[str, str]) -> None:
    from newsletter.site import Site
    from newsletter.track.check import check_site

    bad = Site.load(site_dir, environ={**site_env, "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"})
    assert any("not a base64 DER public key" in e for e in check_site(bad).errors)
    empty = check_site(Site.load(site_dir, environ=site_env))
    assert not empty.errors and any("refuses every post" in w for w in empty.warnings)


def test_hit_times_are_stored_as_db_time_writes_them() -> None:
    """The writer's fast time formatting matches db_time, including fractions that round up to the
    next second, and its datetimes are the same whole microsecond."""
    from newsletter.track.events import db_time, epoch_times

    epochs = [1_622_000_000.9999996, 1_622_000_000.0000004, 1_622_000_000.5, 0.0, 1_700_000_123.123456]
    epochs += [1_622_000_000 + n * 0.0123457 for n in range(2000)]
    for dialect in ("sqlite", "postgresql"):
        times, stored = epoch_times(epochs, dialect)
        assert stored == [db_time(at, dialect) for at in times]
        assert all(abs(at.timestamp() - e) <= 1e-6 for at, e in zip(times, epochs, strict=True))
    assert epoch_times([1_622_000_000.9999996], "sqlite")[1] == ["2021-05-26 03:33:21.000000"]
