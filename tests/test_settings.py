"""Settings: declared once, documented, read from the site file then the environment."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import ConfigError
from newsletter.settings import SETTINGS, load_settings
from tests.conftest import REPO


def test_every_setting_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration reference", 1)[1]
    for setting in SETTINGS:
        row = re.search(rf"^\| `{setting.name}` \| `{setting.env}` \|.+\|$", table, re.MULTILINE)
        assert row, f"setting {setting.name} ({setting.env}) is not in the README's configuration reference"


def test_defaults_then_file_then_environment(tmp_path):
    (tmp_path / "newsletter.toml").write_text('base_url = "https://hub.example.org/"\nport = 9000\n')
    settings = load_settings(tmp_path, environ={"NEWSLETTER_PORT": "9100"})
    assert settings["base_url"] == "https://hub.example.org"
    assert settings.sources["base_url"] == "newsletter.toml"
    assert settings["port"] == 9100 and settings.sources["port"] == "env"
    assert settings["transport"] == "auto" and settings.sources["transport"] == "default"


def test_sqlite_default_lives_in_the_site(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings["database_url"] == f"sqlite:///{tmp_path.resolve() / 'newsletter.db'}"


def test_local_file_overrides_site_file_and_secret_is_generated_once(tmp_path):
    (tmp_path / "newsletter.toml").write_text('smtp_host = "a.example.org"\n')
    (tmp_path / "newsletter.local.toml").write_text('smtp_host = "b.example.org"\n')
    first = load_settings(tmp_path, environ={})
    assert first["smtp_host"] == "b.example.org"
    assert len(first["secret_key"]) >= 32
    assert load_settings(tmp_path, environ={})["secret_key"] == first["secret_key"]
    assert oct((tmp_path / ".secret_key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("content", "environ", "expected"),
    [
        ("colour = 1\n", {}, "unknown setting 'colour'"),
        ("port = 'eighty'\n", {}, "setting 'port'"),
        ("", {"NEWSLETTER_SMTP_STARTTLS": "maybe"}, "NEWSLETTER_SMTP_STARTTLS"),
        ("", {"NEWSLETTER_IP_PRIVACY": "all"}, "environment NEWSLETTER_IP_PRIVACY: setting 'ip_privacy'"),
        ("", {"NEWSLETTER_IP_PRIVACY": "all"}, "expected one of truncate, hash, none; got 'all'"),
        ("transport = 'pigeon'\n", {}, "newsletter.toml: setting 'transport': expected one of auto,"),
        ("hit_writer = 'fork'\n", {}, "setting 'hit_writer': expected one of process, thread"),
        ("port = \n", {}, "invalid TOML"),
    ],
)
def test_bad_settings_say_what_to_fix(tmp_path, content, environ, expected):
    (tmp_path / "newsletter.toml").write_text(content)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(tmp_path, environ=environ)


def test_choices_are_declared_with_their_setting():
    from newsletter.settings import SETTINGS

    declared = {s.name: s.choices for s in SETTINGS if s.choices}
    assert declared["transport"] == ("auto", "sendgrid", "smtp", "outbox", "memory")
    assert set(declared) == {"transport", "ip_privacy", "hit_writer"}


def test_config_command_masks_secrets(site_dir):
    runner = CliRunner()
    env = {
        "NEWSLETTER_SENDGRID_API_KEY": "SG.very-secret-api-key-1234",
        "NEWSLETTER_SMTP_PASSWORD": "hunter2",
    }
    result = runner.invoke(app, ["config", "--site", str(site_dir), "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["sendgrid_api_key"] == "****1234"
    assert shown["smtp_password"] == "****"
    assert "very-secret" not in result.stdout and "hunter2" not in result.stdout
    assert set(shown) == {s.name for s in SETTINGS}
