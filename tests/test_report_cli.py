"""`newsletter stats` and `newsletter users add` through the real CLI, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from newsletter import accounts
from newsletter.cli import app
from newsletter.report.rollup import SIGN_ON
from newsletter.site import Site
from tests.support.report import seed_campaign


def test_stats_json_matches_the_events(site: Site, site_dir: Path, site_env: dict[str, str]) -> None:
    seeded = seed_campaign(site.store)
    result = CliRunner().invoke(
        app, ["stats", "sign-on-push", "--site", str(site_dir), "--json"], env=site_env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    total = data["total"]
    assert total["sign_on"] == seeded.unique("click", human=True, label=SIGN_ON)
    assert total["opens"] == seeded.unique("open", human=True)
    assert total["opens_all"] == seeded.unique("open")
    assert total["sent"] == seeded.sent()
    assert set(data["languages"]) == {"en", "fr", "es"}
    assert any(link["sign_on"] for link in data["links"])
    table = CliRunner().invoke(
        app, ["stats", str(seeded.occurrence_id), "--site", str(site_dir)], env=site_env
    )
    assert table.exit_code == 0 and "sign-on click-throughs" in table.stdout
    assert str(total["sign_on"]) in table.stdout


def test_stats_compare_and_errors(site: Site, site_dir: Path, site_env: dict[str, str]) -> None:
    seeded = seed_campaign(site.store)
    result = CliRunner().invoke(app, ["stats", "--compare", "--site", str(site_dir), "--json"], env=site_env)
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["occurrences"][0]
    assert row["sign_on"] == seeded.unique("click", human=True, label=SIGN_ON)
    unknown = CliRunner().invoke(app, ["stats", "no-such-campaign", "--site", str(site_dir)], env=site_env)
    assert (
        unknown.exit_code == 2 and "no-such-campaign" in unknown.output and "sign-on-push" in unknown.output
    )
    nothing = CliRunner().invoke(app, ["stats", "--site", str(site_dir)], env=site_env)
    assert nothing.exit_code == 2 and "--compare" in nothing.output


def test_users_add_with_password_on_stdin_or_prompt(
    site: Site, site_dir: Path, site_env: dict[str, str]
) -> None:
    args = ["users", "add", "Ana@Example.org", "--role", "organiser", "--site", str(site_dir)]
    result = CliRunner().invoke(app, [*args, "--password-stdin"], input="a long passphrase\n", env=site_env)
    assert result.exit_code == 0, result.output
    assert accounts.authenticate(site.store, "ana@example.org", "a long passphrase") is not None
    assert accounts.authenticate(site.store, "ana@example.org", "wrong") is None
    # Without --password-stdin it prompts twice (hidden); a changed role and password replace the old.
    args[4] = "staff"
    result = CliRunner().invoke(app, args, input="another passphrase\nanother passphrase\n", env=site_env)
    assert result.exit_code == 0, result.output
    user = accounts.authenticate(site.store, "ana@example.org", "another passphrase")
    assert user is not None and user.role == "staff" and user.can_send
    bad = CliRunner().invoke(
        app, [*args[:4], "admin", *args[5:], "--password-stdin"], input="long enough pw\n", env=site_env
    )
    assert bad.exit_code == 2 and "staff, organiser" in bad.output
    short = CliRunner().invoke(app, [*args, "--password-stdin"], input="short\n", env=site_env)
    assert short.exit_code == 2 and "at least" in short.output
