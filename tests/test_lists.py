"""Lists from lists/*.yaml: sync, counts, and every kind of broken file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from newsletter.audience.lists import list_counts, load_lists, sync_lists
from newsletter.cli import app

GOOD = """slug: {slug}
name: {{en: Test list}}
languages: [en, fr]
sender: {{name: Hub, email: hub@example.org}}
postal_address: 1 Example Street
"""


def test_example_lists_sync_with_their_settings(site):
    report = load_lists(site)
    by_slug = {m.slug: m for m in report.lists}
    assert report.errors == []
    assert set(by_slug) == {"members", "drug-user-advocates", "key-populations"}
    members = by_slug["members"]
    assert members.languages == ["en", "fr", "es", "ru", "pt"]
    assert members.public and members.double_opt_in
    assert members.display_name("ru") == "Участники хаба"
    assert not by_slug["key-populations"].public


def test_malformed_yaml_names_file_line_column_and_other_lists_still_sync(site):
    bad = site.lists_dir / "broken.yaml"
    bad.write_text("slug: broken\nname: [unclosed\nsender: x\n")
    (site.lists_dir / "extra.yaml").write_text(GOOD.format(slug="extra"))
    report = sync_lists(site)
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{bad}:3:")
    assert "invalid YAML" in report.errors[0]
    assert "extra" in {c["slug"] for c in list_counts(site.store)}


def test_unknown_language_is_reported_with_the_offered_ones(site):
    path = site.lists_dir / "xx.yaml"
    path.write_text(GOOD.format(slug="xx").replace("[en, fr]", "[en, klingon]"))
    report = load_lists(site)
    (error,) = report.errors
    assert error.startswith(f"{path}:3:1:")
    assert "'klingon'" in error and "en, fr, es, ru, pt" in error


def test_duplicate_slug_names_both_files(site):
    path = site.lists_dir / "zz-copy.yaml"
    path.write_text(GOOD.format(slug="members"))
    (error,) = load_lists(site).errors
    assert str(path) in error and "members.yaml" in error and "duplicate list slug 'members'" in error


def test_missing_field_and_bad_sender(site):
    (site.lists_dir / "a.yaml").write_text("slug: a\nname: A\nsender: {name: x, email: x}\n")
    (site.lists_dir / "b.yaml").write_text(GOOD.format(slug="b").replace("hub@example.org", "not-an-address"))
    errors = load_lists(site).errors
    assert any("a.yaml:1:1: missing field 'postal_address'" in e for e in errors)
    assert any("b.yaml:4:" in e and "'not-an-address'" in e for e in errors)


def test_removed_file_deactivates_its_list(site):
    (site.lists_dir / "drug-user-advocates.yaml").unlink()
    report = sync_lists(site)
    assert report.deactivated == ["drug-user-advocates"]
    assert [c["slug"] for c in list_counts(site.store)] == ["key-populations", "members"]


def test_lists_show_json(site_dir, site_env):
    runner = CliRunner()
    result = runner.invoke(app, ["lists", "show", "--site", str(site_dir), "--json"], env=site_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["slug"] for d in data] == ["drug-user-advocates", "key-populations", "members"]
    assert data[2]["statuses"] == {
        "confirmed": 0,
        "unconfirmed": 0,
        "unsubscribed": 0,
        "bounced": 0,
        "complained": 0,
    }
