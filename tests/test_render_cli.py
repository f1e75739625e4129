"""`newsletter check`, `newsletter preview` and `newsletter i18n` on a copy of the example site."""

from __future__ import annotations

import email
import email.policy
import json

from babel.messages.pofile import read_po
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.render.environment import template_names

LANGUAGES = ["en", "fr", "es", "ru", "pt"]


def run(site_dir, env, *args):
    return CliRunner().invoke(app, [*args, "--site", str(site_dir)], env=env)


def test_check_passes_on_the_example_site(site_dir, render_env):
    result = run(site_dir, render_env, "check", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"], report
    templates = next(s for s in report["stages"] if s["stage"] == "templates")
    assert templates["errors"] == [] and templates["warnings"] == []
    grid = templates["tables"][0]
    assert grid["header"] == ["template", *LANGUAGES]
    assert {row[0] for row in grid["rows"]} == {
        "call_to_action",
        "confirm",
        "digest",
        "event_reminder",
        "message",
        "welcome",
    }
    assert all(cell == "ok" for row in grid["rows"] for cell in row[1:])
    completeness = templates["tables"][1]
    assert [row[0] for row in completeness["rows"]] == LANGUAGES
    assert all(row[2] == "0" and row[3] == "0" for row in completeness["rows"])


def test_check_reports_missing_and_fuzzy_translations_and_errors(site_dir, render_env):
    po = site_dir / "templates" / "locale" / "pt" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    text = text.replace('msgstr "Leia mais"', 'msgstr ""')
    text = text.replace('msgid "Unsubscribe"', '#, fuzzy\nmsgid "Unsubscribe"')
    po.write_text(text, encoding="utf-8")
    (site_dir / "templates" / "welcome.mjml").write_text(
        '{% extends "layouts/base.mjml" %}{% block content %}\n<mj-section>\n{% endblock %}\n',
        encoding="utf-8",
    )
    result = run(site_dir, render_env, "check", "--json")
    assert result.exit_code == 1
    templates = next(s for s in json.loads(result.stdout)["stages"] if s["stage"] == "templates")
    assert any("welcome.mjml:2: <mj-section> is never closed" in e for e in templates["errors"])
    pt_row = next(row for row in templates["tables"][1]["rows"] if row[0] == "pt")
    assert pt_row[2] == "1" and pt_row[3] == "1" and "'Read more'" in pt_row[4]
    assert any("pt/LC_MESSAGES/messages.po: 1 missing and 1 fuzzy" in w for w in templates["warnings"])


def test_preview_writes_every_language_of_every_template(site_dir, render_env, tmp_path):
    out = tmp_path / "preview"
    for template in template_names(site_dir / "templates"):
        result = run(site_dir, render_env, "preview", template, "--all-langs", "--out", str(out))
        assert result.exit_code == 0, result.output
        for lang in LANGUAGES:
            for ext in ("html", "txt", "eml"):
                assert (out / f"{template}.{lang}.{ext}").stat().st_size > 500
            msg = email.message_from_bytes(
                (out / f"{template}.{lang}.eml").read_bytes(), policy=email.policy.default
            )
            assert msg.get_body(("html",)) is not None and msg["List-Unsubscribe"]
            assert f'<html lang="{lang}"' in (out / f"{template}.{lang}.html").read_text(encoding="utf-8")
    assert "Maria Santos" in (out / "welcome.pt.txt").read_text(encoding="utf-8")


def test_preview_of_a_campaign_uses_its_event(site_dir, render_env, tmp_path):
    result = run(
        site_dir, render_env, "preview", "webinar-april-1d", "--lang", "fr", "--out", str(tmp_path), "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["data"] == "real"
    text = (tmp_path / "webinar-april-1d.fr.txt").read_text(encoding="utf-8")
    assert "La société civile et la Réunion de haut niveau 2021" in text
    assert "mercredi 21 avril 2021, 13:00 (Paris)" in text  # 11:00 Abidjan for a reader in Paris
    bad = run(site_dir, render_env, "preview", "no-such-thing", "--out", str(tmp_path))
    assert bad.exit_code == 2 and "no campaign or template 'no-such-thing'" in bad.output
    bad_lang = run(site_dir, render_env, "preview", "digest", "--lang", "de", "--out", str(tmp_path))
    assert bad_lang.exit_code == 2 and "unknown language 'de'" in bad_lang.output


def test_i18n_extract_update_compile_round_trip(site_dir, render_env):
    (site_dir / "templates" / "partials" / "greeting.mjml").write_text(
        '<mj-text>{{ _("Hello %(name)s,", name=recipient_name) }}\n'
        '{{ _("A brand new sentence.") }}</mj-text>\n',
        encoding="utf-8",
    )
    assert run(site_dir, render_env, "i18n", "extract").exit_code == 0
    assert run(site_dir, render_env, "i18n", "update").exit_code == 0
    po = site_dir / "templates" / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    assert catalog["A brand new sentence."].string == ""  # new: untranslated
    assert catalog["Hello %(name)s,"].string == "Bonjour %(name)s,"  # kept
    result = run(site_dir, render_env, "i18n", "compile")
    assert result.exit_code == 0 and po.with_suffix(".mo").exists()
