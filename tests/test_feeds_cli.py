"""`newsletter feeds ...` end to end on a copy of the example site."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from newsletter.cli import app


def run(site_dir, site_env, *args):
    env = {**site_env, "NEWSLETTER_FEED_HOST_DELAY": "0"}
    return CliRunner().invoke(app, ["feeds", *args, "--site", str(site_dir)], env=env)


def test_pull_list_items_add_remove(site_dir, site_env):
    pulled = run(site_dir, site_env, "pull", "--json")
    assert pulled.exit_code == 0, pulled.output
    results = json.loads(pulled.stdout)
    assert [(r["name"], r["status"], r["seeded"]) for r in results] == [
        ("hub-en", "ok", 9),
        ("hub-fr", "ok", 6),
        ("hub-es", "ok", 6),
        ("hub-ru", "ok", 6),
        ("hub-pt", "ok", 5),
    ]
    again = json.loads(run(site_dir, site_env, "pull", "--json", "--feed", "hub-ru").stdout)
    assert [(r["name"], r["status"]) for r in again] == [("hub-ru", "not_modified")]

    listed = json.loads(run(site_dir, site_env, "list", "--json").stdout)
    assert listed["errors"] == []
    hub_fr = next(f for f in listed["feeds"] if f["name"] == "hub-fr")
    assert (hub_fr["status"], hub_fr["items"], hub_fr["new_items"], hub_fr["language"]) == ("ok", 6, 0, None)

    shown = json.loads(run(site_dir, site_env, "items", "--feed", "hub-ru", "--json").stdout)
    assert len(shown) == 6 and all(i["seeded"] and i["language"] == "ru" for i in shown)
    assert shown[0]["content_html"].startswith("<p>Как страны Восточной Европы")
    assert shown[0]["published_at"] == "2026-11-23T07:00:00+00:00"
    assert json.loads(run(site_dir, site_env, "items", "--since", "2999-01-01", "--json").stdout) == []
    table = run(site_dir, site_env, "items", "--limit", "3")
    assert table.exit_code == 0 and "Five years on" in table.stdout

    bad_date = run(site_dir, site_env, "items", "--since", "yesterday")
    assert bad_date.exit_code == 2 and "expected a date such as 2021-06-01" in bad_date.output

    added = run(
        site_dir,
        site_env,
        "add",
        "hub-webinars",
        "feeds/hub-en.xml",
        "--language",
        "en",
        "--category",
        "Webinars",
    )
    assert added.exit_code == 0, added.output
    assert 'name = "hub-webinars"' in (site_dir / "newsletter.toml").read_text(encoding="utf-8")
    backfilled = json.loads(
        run(site_dir, site_env, "pull", "--feed", "hub-webinars", "--backfill", "--json").stdout
    )
    assert [(r["status"], r["new"]) for r in backfilled] == [("ok", 2)]  # only the webinar posts

    removed = run(site_dir, site_env, "remove", "hub-webinars")
    assert removed.exit_code == 0
    listed = json.loads(run(site_dir, site_env, "list", "--json").stdout)
    assert "hub-webinars" not in [f["name"] for f in listed["feeds"]]
    assert run(site_dir, site_env, "remove", "hub-webinars").exit_code == 2


def test_pull_exits_non_zero_when_a_feed_fails_but_pulls_the_others(site_dir, site_env):
    with (site_dir / "newsletter.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[feeds]]\nname = "broken"\nurl = "feeds/not-there.xml"\n')
    result = run(site_dir, site_env, "pull")
    assert result.exit_code == 1
    assert "broken" in result.stdout and "cannot read" in result.output
    assert result.stdout.count(" ok ") == 5
