"""Declared feeds: validation, `newsletter check`, and add/remove editing newsletter.toml in place."""

from __future__ import annotations

import pytest

from newsletter.errors import InputError
from newsletter.feeds.config import FeedConfig, add_feed, check_site, load_feeds, remove_feed
from newsletter.site import Site

ENV = {"NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789"}


@pytest.fixture
def site(site_dir):
    """The example site without a store: declarations need no database (and run once, not per backend)."""
    return Site.load(site_dir, environ=ENV)


def test_example_site_declares_its_feeds_and_passes_the_check(site):
    config = load_feeds(site)
    assert config.errors == []
    assert [f.name for f in config.feeds] == ["hub-en", "hub-fr", "hub-es", "hub-ru", "hub-pt"]
    assert config.named("hub-fr") == FeedConfig("hub-fr", "feeds/hub-fr.xml", None, ())
    report = check_site(site)
    assert report.errors == [] and report.stage == "feeds"
    assert report.tables[0][2][1] == ["hub-fr", "feeds/hub-fr.xml", "from the feed", ""]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Hub EN", "url": "feeds/a.xml"}, "field name: 'Hub EN' is not a feed name"),
        ({"name": "a"}, "field url: missing"),
        (
            {"name": "a", "url": "ftp://hub.example.org/feed"},
            "scheme 'ftp' in 'ftp://hub.example.org/feed' is not",
        ),
        ({"name": "a", "url": "https:///feed"}, "field url: 'https:///feed' has no host"),
        (
            {"name": "a", "url": "feeds/hub-en.xml", "language": "de"},
            "unknown language 'de'; this site offers en, fr",
        ),
        ({"name": "a", "url": "feeds/hub-en.xml", "language": 7}, "field language: expected text"),
        ({"name": "a", "url": "feeds/hub-en.xml", "categories": [""]}, "field categories: expected a list"),
        ({"name": "a", "url": "feeds/hub-en.xml", "lang": "fr"}, "unknown field 'lang'"),
    ],
)
def test_bad_declarations_say_what_to_fix_and_the_rest_loads(site, entry, message):
    site.config["feeds"] = [{"name": "good", "url": "feeds/hub-en.xml"}, entry]
    config = load_feeds(site)
    assert [f.name for f in config.feeds] == ["good"]
    assert len(config.errors) == 1
    assert "newsletter.toml [[feeds]] #2" in config.errors[0] and message in config.errors[0]


def test_check_reports_missing_local_files_and_duplicates(site):
    site.config["feeds"] = [
        {"name": "a", "url": "feeds/missing.xml"},
        {"name": "a", "url": "feeds/hub-en.xml"},
        {"name": "b", "url": "https://hub.example.org/feed/", "language": "FR"},
    ]
    report = check_site(site)
    assert any("no file at" in e and "missing.xml" in e for e in report.errors)
    assert any("'a' is declared twice" in e for e in report.errors)
    assert load_feeds(site).named("b").language == "fr"  # the site's spelling


def test_add_and_remove_keep_the_rest_of_the_file(site_dir):
    site = Site.load(site_dir, environ=ENV)
    before = site.config_file.read_text(encoding="utf-8")
    add_feed(
        site,
        "hub-webinars",
        "https://hub.example.org/category/webinars/feed/",
        language="pt-br",
        categories=("Webinars",),
    )
    text = site.config_file.read_text(encoding="utf-8")
    assert text.startswith(before.rstrip("\n"))  # comments, [site], [site.links], earlier feeds untouched
    assert '[[feeds]]\nname = "hub-webinars"\nurl = "https://hub.example.org/category/webinars/feed/"' in text
    reloaded = Site.load(site_dir, environ=ENV)
    added = load_feeds(reloaded).named("hub-webinars")
    assert added == FeedConfig(
        "hub-webinars", "https://hub.example.org/category/webinars/feed/", "pt", ("Webinars",)
    )
    assert load_feeds(site).named("hub-webinars") == added  # the loaded site sees it too

    with pytest.raises(InputError, match="a feed named 'hub-webinars' already exists"):
        add_feed(site, "hub-webinars", "https://hub.example.org/x")
    with pytest.raises(InputError, match="unknown language 'xx'"):
        add_feed(site, "other", "https://hub.example.org/x", language="xx")

    remove_feed(site, "hub-webinars")
    assert site.config_file.read_text(encoding="utf-8") == before
    with pytest.raises(InputError, match="no feed named 'hub-webinars'; declared feeds: hub-en, hub-fr"):
        remove_feed(site, "hub-webinars")


def test_add_to_a_site_without_feeds(tmp_path):
    (tmp_path / "newsletter.toml").write_text(
        '# my hub\n[site]\nlanguages = ["en", "fr"]\n', encoding="utf-8"
    )
    site = Site.load(tmp_path, environ=ENV)
    add_feed(site, "news", "feeds/news.xml")
    remove_feed(site, "news")
    assert (tmp_path / "newsletter.toml").read_text(
        encoding="utf-8"
    ) == '# my hub\n[site]\nlanguages = ["en", "fr"]\n'


def test_add_when_other_tables_follow_the_feeds(tmp_path):
    text = (
        '[site]\nlanguages = ["en"]\n\n[[feeds]]\nname = "a"\nurl = "feeds/a.xml"\n\n'
        '[site.links]\nhub = "https://hub.example.org/"\n'
    )
    (tmp_path / "newsletter.toml").write_text(text, encoding="utf-8")
    site = Site.load(tmp_path, environ=ENV)
    add_feed(site, "b", "feeds/b.xml")
    reloaded = Site.load(tmp_path, environ=ENV)
    assert [f.name for f in load_feeds(reloaded).feeds] == ["a", "b"]
    assert reloaded.config["site"]["links"] == {"hub": "https://hub.example.org/"}
