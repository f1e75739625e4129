"""Pulling feeds into the store, against a real HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.feeds.config import load_feeds
from newsletter.feeds.pull import pull_feeds
from newsletter.feeds.query import count_items_since, feed_overview, items_since
from newsletter.store.tables import feeds, items
from tests.support.feeds import Answer, rss

T0 = datetime(2021, 5, 1, 9, 0, tzinfo=UTC)
FEEDS = Path(__file__).resolve().parent.parent / "feeds"


@pytest.fixture
def quick(site):
    """The site with no politeness pause and a short timeout, so the tests stay fast."""
    site.settings = site.settings.replace(feed_host_delay=0.0, feed_timeout=1.0)
    return site


def declare(site, *entries):
    site.config["feeds"] = [dict(e) for e in entries]


def by_name(results):
    return {r.name: r for r in results}


def feed_row(site, name):
    with site.store.read() as conn:
        return conn.execute(select(feeds).where(feeds.c.name == name)).one()


def doc(*numbers, changed=(), **kw):
    return rss(
        [
            {
                "guid": f"post-{n}",
                "title": f"Post {n}",
                "link": f"https://hub.example.org/p/{n}",
                "pubDate": f"Mon, {n:02d} May 2021 09:00:00 +0000",
                "categories": ["Webinars"] if n % 2 else ["Political Declaration"],
                "content": f"<p>Body {n}{' (revised)' if n in changed else ''}</p>",
            }
            for n in numbers
        ],
        **kw,
    ).encode()


def test_example_site_items_come_in_once_and_only_once(quick):
    first = pull_feeds(quick, now=T0)
    assert [(r.name, r.status, r.seeded, r.new) for r in first] == [
        ("hub-en", "ok", 9, 0),
        ("hub-fr", "ok", 6, 0),
        ("hub-es", "ok", 6, 0),
        ("hub-ru", "ok", 6, 0),
        ("hub-pt", "ok", 5, 0),
    ]
    second = pull_feeds(quick, now=T0 + timedelta(minutes=30))
    assert {r.status for r in second} == {"not_modified"}
    with quick.store.read() as conn:
        assert len(conn.execute(select(items.c.id)).all()) == 32
        assert items_since(conn, None) == []  # all seeded: nothing is offered as news
        languages = {r.language for r in conn.execute(select(items.c.language))}
    assert languages == {"en", "fr", "es", "ru", "pt"}

    # The hub edits one post and publishes another: one updated, one new, the rest unchanged.
    path = quick.root / "feeds" / "hub-en.xml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("Thank you to the 240 people", "Thank you to the 250 people")
    new_item = text[text.index("\t<item>") : text.index("</item>") + len("</item>")]
    new_item = new_item.replace("?p=2417", "?p=2430").replace("Five years on", "Six years on")
    text = text.replace("\t<item>", new_item + "\n\t<item>", 1)
    path.write_text(text, encoding="utf-8")
    third = by_name(pull_feeds(quick, names=["hub-en"], now=T0 + timedelta(hours=1)))
    assert (third["hub-en"].new, third["hub-en"].updated, third["hub-en"].unchanged) == (1, 1, 8)
    with quick.store.read() as conn:
        news = items_since(conn, T0)
        assert [i.title for i in news] == [
            "Six years on: how the 2021 Political Declaration targets are tracking"
        ]
        assert news[0].first_seen_at == T0 + timedelta(hours=1)
        assert count_items_since(conn, T0, language="en") == 1
        assert count_items_since(conn, T0 + timedelta(hours=1)) == 0


def test_backfill_offers_what_is_there_and_queries_filter(quick):
    results = pull_feeds(quick, backfill=True, now=T0)
    assert sum(r.new for r in results) == 32 and sum(r.seeded for r in results) == 0
    with quick.store.read() as conn:
        everything = items_since(conn, None, limit=100)
        assert len(everything) == 32
        dates = [i.published_at for i in everything]
        assert dates == sorted(dates, reverse=True)
        ru = items_since(conn, None, language="ru", limit=100)
        assert len(ru) == 6 and all(i.feed == "hub-ru" for i in ru)
        webinars = items_since(conn, None, categories=["webinars", "WEBINAIRES"], limit=100)
        assert {i.feed for i in webinars} == {"hub-en", "hub-fr"}
        assert count_items_since(conn, None, categories=["Webinars"]) == 2
        assert len(items_since(conn, None, limit=3)) == 3
        assert items_since(conn, T0) == []  # first seen at T0, not after it
    # A feed no longer declared stops contributing (its items are kept).
    declare(quick, {"name": "hub-ru", "url": "feeds/hub-ru.xml"})
    pull_feeds(quick, now=T0 + timedelta(minutes=5))
    with quick.store.read() as conn:
        assert count_items_since(conn, None) == 6
        assert len(conn.execute(select(items.c.id)).all()) == 32


def test_new_changed_and_conditional_pulls_over_http(quick, feed_server):
    state = {"body": doc(1, 2, 3), "etag": '"v1"'}
    url = feed_server.route("/feed", lambda _h: Answer(state["body"], etag=state["etag"]))
    declare(quick, {"name": "hub", "url": url, "language": "en"})

    assert by_name(pull_feeds(quick, now=T0))["hub"].seeded == 3
    state.update(body=doc(1, 2, 3, 4, changed={2}), etag='"v2"')
    second = by_name(pull_feeds(quick, now=T0 + timedelta(hours=1)))["hub"]
    assert (second.status, second.new, second.updated, second.unchanged) == ("ok", 1, 1, 2)
    assert feed_server.hits("/feed")[1].headers["if-none-match"] == '"v1"'
    third = by_name(pull_feeds(quick, now=T0 + timedelta(hours=2)))["hub"]
    assert (third.status, third.http_status) == ("not_modified", 304)
    assert "user-agent" in feed_server.hits("/feed")[2].headers
    assert feed_server.hits("/feed")[2].headers["user-agent"].startswith("newsletter/")

    with quick.store.read() as conn:
        news = items_since(conn, T0)
        assert [i.title for i in news] == ["Post 4"]
        revised = conn.execute(select(items).where(items.c.guid == "post-2")).one()
        assert revised.content_html == "<p>Body 2 (revised)</p>"
        assert revised.changed_at == T0 + timedelta(hours=1) and revised.first_seen_at == T0
        assert revised.seeded  # an old item edited later is still old news
    row = feed_row(quick, "hub")
    assert row.etag == '"v2"' and row.last_success_at == T0 + timedelta(hours=2) and row.last_status == 304


def test_items_without_guid_dedupe_on_link_then_on_title_and_content(quick, feed_server):
    body = rss(
        [
            {"title": "Linked", "link": "https://hub.example.org/linked", "description": "<p>v1</p>"},
            {"title": "Bare", "description": "<p>no id, no link</p>"},
        ]
    ).encode()
    url = feed_server.route("/feed", Answer(body))  # no validators: every pull parses again
    declare(quick, {"name": "bare", "url": url})
    pull_feeds(quick, now=T0)
    again = by_name(pull_feeds(quick, now=T0 + timedelta(hours=1)))["bare"]
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    feed_server.route("/feed", Answer(body.replace(b"<p>v1</p>", b"<p>v2</p>")))
    edited = by_name(pull_feeds(quick, now=T0 + timedelta(hours=2)))["bare"]
    assert (edited.new, edited.updated, edited.unchanged) == (0, 1, 1)


def test_one_broken_feed_never_stops_the_others(quick, feed_server):
    ru = (FEEDS / "hub-ru.xml").read_text(encoding="utf-8")
    en = (FEEDS / "hub-en.xml").read_bytes()
    routes = {
        "e500": Answer(b"oops", 500, "text/plain"),
        "gone": Answer(b"gone", 410, "text/plain"),
        "slow": Answer(doc(1), delay=2.0),
        "html": Answer(b"<html><body>Maintenance</body></html>", content_type="text/html"),
        "truncated": Answer(en[: len(en) // 2]),
        "wrongtype": Answer(en, content_type="text/plain"),
        "gzip": Answer(en, gzip=True),
        "cp1251": Answer(
            ru.replace('encoding="UTF-8"', 'encoding="windows-1251"').encode("cp1251"),
            content_type="application/rss+xml; charset=windows-1251",
        ),
        "utf16": Answer(
            ru.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
            content_type="application/rss+xml",
        ),
        "missing": None,
    }
    declared = []
    for name, answer in routes.items():
        url = feed_server.route(f"/{name}", answer) if answer else feed_server.url("/missing")
        declared.append({"name": name, "url": url})
    declared.append({"name": "local", "url": "feeds/hub-fr.xml"})
    declare(quick, *declared)

    results = by_name(pull_feeds(quick, now=T0))
    assert {n: r.status for n, r in results.items()} == {
        "e500": "error",
        "gone": "gone",
        "slow": "error",
        "html": "error",
        "truncated": "ok",
        "wrongtype": "ok",
        "gzip": "ok",
        "cp1251": "ok",
        "utf16": "ok",
        "missing": "error",
        "local": "ok",
    }
    assert results["e500"].error == "HTTP 500 Internal Server Error" and results["e500"].http_status == 500
    assert results["slow"].error == "timed out after 1s"
    assert "not a well-formed feed" in results["html"].error
    assert results["missing"].error == "HTTP 404 Not Found"
    assert results["truncated"].warning and 1 <= results["truncated"].seeded < 9
    assert results["wrongtype"].warning and results["wrongtype"].seeded == 9
    assert results["gzip"].seeded == 9 and results["gzip"].warning is None
    assert results["local"].seeded == 6
    for name in ("cp1251", "utf16"):
        assert results[name].seeded == 6 and results[name].warning is None

    assert feed_row(quick, "truncated").warning.startswith("not a well-formed feed")
    e500 = feed_row(quick, "e500")
    assert (e500.last_error, e500.last_error_at, e500.last_status) == (
        "HTTP 500 Internal Server Error",
        T0,
        500,
    )
    with quick.store.read() as conn:
        titles = {r.title for r in conn.execute(select(items.c.title).where(items.c.language == "ru"))}
        overview = {f["name"]: f for f in feed_overview(conn, load_feeds(quick).feeds)}
    assert "Пять лет спустя: вебинар для Восточной Европы и Центральной Азии" in titles
    assert overview["e500"]["status"] == "error" and overview["truncated"]["status"] == "warning"
    assert overview["gone"]["status"] == "disabled" and overview["gzip"]["status"] == "ok"

    # Errors are retried at the next pull; the 410 is not asked again.
    feed_server.route("/e500", Answer(doc(1, 2)))
    later = by_name(pull_feeds(quick, names=["e500", "gone"], now=T0 + timedelta(hours=1)))
    assert (later["e500"].status, later["e500"].seeded) == ("ok", 2)
    assert later["gone"].status == "disabled" and "410 Gone" in later["gone"].error
    assert len(feed_server.hits("/gone")) == 1
    assert feed_row(quick, "e500").last_success_at == T0 + timedelta(hours=1)
    # A new URL in the configuration brings the disabled feed back.
    declare(quick, {"name": "gone", "url": feed_server.route("/moved-here", Answer(doc(7)))})
    assert by_name(pull_feeds(quick, now=T0 + timedelta(hours=2)))["gone"].status == "ok"


@pytest.mark.parametrize(("code", "permanent"), [(301, True), (308, True), (302, False), (307, False)])
def test_redirects_are_followed_and_permanent_ones_recorded(quick, feed_server, code, permanent):
    new_url = feed_server.route("/new", Answer(doc(1), etag='"n1"'))
    old_url = feed_server.route("/old", Answer(status=code, location="/new"))
    declare(quick, {"name": "moved", "url": old_url})
    first = by_name(pull_feeds(quick, now=T0))["moved"]
    assert (first.status, first.url) == ("ok", new_url)
    assert feed_row(quick, "moved").permanent_url == (new_url if permanent else None)
    pull_feeds(quick, now=T0 + timedelta(hours=1))
    assert len(feed_server.hits("/old")) == (1 if permanent else 2)
    assert feed_server.hits("/new")[-1].status == 304


def test_unknown_feed_name_is_refused_and_bad_declarations_reported(quick):
    from newsletter.errors import InputError

    declare(quick, {"name": "ok", "url": "feeds/hub-en.xml"}, {"name": "Bad Name", "url": "feeds/x.xml"})
    with pytest.raises(InputError, match="--feed nope: no such feed; declared feeds: ok"):
        pull_feeds(quick, names=["nope"])
    results = pull_feeds(quick, now=T0)
    assert [r.status for r in results] == ["invalid", "ok"]
    assert "field name: 'Bad Name' is not a feed name" in results[0].error


def test_a_crash_while_handling_one_feed_is_recorded_and_the_others_go_on(quick, monkeypatch):
    import newsletter.feeds.pull as pull_module

    real = pull_module.parse_feed

    def crash_on_russian(body, headers, **kw):
        if "Хаб".encode() in body:
            raise RuntimeError("parser bug")
        return real(body, headers, **kw)

    monkeypatch.setattr(pull_module, "parse_feed", crash_on_russian)
    results = by_name(pull_feeds(quick, now=T0))
    assert results["hub-ru"].status == "error" and results["hub-ru"].error == "RuntimeError: parser bug"
    assert [r.status for n, r in results.items() if n != "hub-ru"] == ["ok"] * 4
    assert feed_row(quick, "hub-ru").last_error == "RuntimeError: parser bug"


def test_a_site_without_feeds_pulls_nothing(quick):
    pull_feeds(quick, now=T0)
    declare(quick)
    assert pull_feeds(quick, now=T0 + timedelta(hours=1)) == []
    with quick.store.read() as conn:
        assert {r.active for r in conn.execute(select(feeds.c.active))} == {False}


def test_items_published_before_the_first_pull_never_become_news(quick, feed_server):
    full = (FEEDS / "hub-en.xml").read_bytes()
    answer = {"body": full[: len(full) // 3]}  # the first pull sees a truncated document
    url = feed_server.route("/feed", lambda _h: Answer(answer["body"]))
    declare(quick, {"name": "hub", "url": url})
    first_pull = datetime(2026, 11, 26, tzinfo=UTC)
    first = by_name(pull_feeds(quick, now=first_pull))["hub"]
    assert first.warning and 1 <= first.seeded < 9

    text = full.decode()
    fresh = text[text.index("\t<item>") : text.index("</item>") + len("</item>")]
    fresh = fresh.replace("?p=2417", "?p=2500").replace("Wed, 25 Nov 2026", "Fri, 27 Nov 2026")
    answer["body"] = text.replace("\t<item>", fresh + "\n\t<item>", 1).encode()
    later = by_name(pull_feeds(quick, now=first_pull + timedelta(days=2)))["hub"]
    # The rest of the archive is stored as already seen; only the post published since is news.
    assert (later.new, later.seeded) == (1, 9 - first.seeded)
    assert later.unchanged + later.updated == first.seeded  # the last, cut-off item is now complete
    with quick.store.read() as conn:
        assert [i.published_at for i in items_since(conn, first_pull, limit=50)] == [
            datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
        ]


def test_two_pulls_saving_one_feed_at_once_store_each_item_once(quick, backend):
    """Pull A has inserted the items and not committed when pull B saves the same document: B waits
    for A, then finds every item known (on PostgreSQL it would otherwise fail on the unique key)."""
    import threading

    from newsletter.feeds import store as feed_store
    from newsletter.feeds.parse import parse_feed
    from newsletter.store.tables import items as items_table

    declare(quick, {"name": "hub", "url": "https://hub.example.org/feed.xml"})
    with quick.store.write() as conn:
        feed_id = feed_store.sync_feeds(conn, load_feeds(quick).feeds, T0)["hub"].id
    parsed = parse_feed(
        doc(1, 2, 3), {}, url="https://hub.example.org/feed.xml", languages=["en"], default_language="en"
    )
    saved = {}

    def save(name):
        with quick.store.write() as conn:
            saved[name] = feed_store.save_items(conn, feed_id, parsed.items, seed=False, now=T0, state={})

    with quick.store.write() as conn:  # pull A, mid-transaction
        saved["a"] = feed_store.save_items(conn, feed_id, parsed.items, seed=False, now=T0, state={})
        b = threading.Thread(target=save, args=("b",))
        b.start()
        b.join(1.0)
        assert b.is_alive(), "pull B did not wait for pull A"
    b.join(30)
    assert (saved["a"].new, saved["b"].new, saved["b"].unchanged) == (3, 0, 3)
    with quick.store.read() as conn:
        assert len(conn.execute(select(items_table.c.id).where(items_table.c.feed_id == feed_id)).all()) == 3
