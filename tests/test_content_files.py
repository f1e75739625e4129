"""Composed campaigns written as files: status, block and fallback, labelled links (both stores)."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.store.tables import links
from tests.support.send import add_subscribers

NOW = datetime(2021, 4, 27, 8, 0, tzinfo=UTC)


def run(site: Any, env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--site", str(site.root)], env=env)


def now_campaign(site: Any, mode: str = "block") -> None:
    """The zero-draft one-off, sent at once (no local hour) with `missing_translation: mode`."""
    path = site.root / "schedules.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        '    local_time: "09:00"\n    quiet_hours: ["22:00", "07:00"]\n    missing_translation: block',
        f"    missing_translation: {mode}",
    )
    path.write_text(text, encoding="utf-8")


def outbox(site: Any) -> dict[str, Message]:
    """language -> one message of the outbox in it."""
    found = {}
    for path in sorted(site.outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        found[str(message["Content-Language"])] = message
    return found


def html_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return str(part.get_payload(decode=True).decode("utf-8"))  # type: ignore[union-attr]


def test_example_campaign_is_fully_translated(site: Any, site_env: dict[str, str]) -> None:
    result = run(site, site_env, "content", "status", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "zero-draft": {
            "en": "source",
            "fr": "translated",
            "es": "translated",
            "ru": "translated",
            "pt": "translated",
        }
    }
    result = run(site, site_env, "check")
    assert "zero-draft" in result.stdout and "outdated" not in result.stdout, result.stdout


def test_an_edited_source_outdates_translations_and_block_refuses_them(
    site: Any, site_env: dict[str, str]
) -> None:
    now_campaign(site, "block")
    en = site.root / "content/zero-draft/en.md"
    en.write_text(en.read_text(encoding="utf-8").replace("before **10 May**", "before **14 May**"), "utf-8")
    result = run(site, site_env, "check")
    assert "campaign zero-draft fr text is outdated" in result.stdout
    assert "it will not be sent in fr (missing_translation: block)" in result.stdout
    statuses = json.loads(run(site, site_env, "content", "status", "zero-draft", "--json").stdout)
    assert statuses["zero-draft"] == {
        "en": "source",
        "fr": "outdated",
        "es": "outdated",
        "ru": "outdated",
        "pt": "outdated",
    }
    add_subscribers(site.store, 2, languages=("en", "fr"), now=NOW)
    sent = run(site, site_env, "send", "zero-draft", "--json")
    assert sent.exit_code == 0, sent.output
    summary = json.loads(sent.stdout)
    assert any("language 'fr' is outdated" in e for e in summary["errors"]), summary
    assert "fr" not in outbox(site)

    # The translator updates fr and stamps it: fr goes out, with the French body.
    result = run(site, site_env, "content", "stamp", "zero-draft", "--lang", "fr")
    assert result.exit_code == 0, result.output
    statuses = json.loads(run(site, site_env, "content", "status", "zero-draft", "--json").stdout)
    assert statuses["zero-draft"]["fr"] == "translated" and statuses["zero-draft"]["es"] == "outdated"


def test_a_missing_translation_blocks_by_name(site: Any, site_env: dict[str, str]) -> None:
    now_campaign(site, "block")
    (site.root / "content/zero-draft/pt.md").unlink()
    assert "has no pt text (content/zero-draft/pt.md)" in run(site, site_env, "check").stdout
    preview = run(
        site, site_env, "preview", "zero-draft", "--lang", "pt", "--out", str(site.root / "pv"), "--json"
    )
    assert json.loads(preview.stdout)[0]["translation"] == "missing"
    add_subscribers(site.store, 1, languages=("pt",), now=NOW)
    summary = json.loads(run(site, site_env, "send", "zero-draft", "--json").stdout)
    assert any("language 'pt' is missing" in e for e in summary["errors"]), summary
    assert not outbox(site)


def test_fallback_sends_the_source_and_links_are_tracked_with_labels(
    site: Any, site_env: dict[str, str]
) -> None:
    now_campaign(site, "fallback")
    (site.root / "content/zero-draft/pt.md").unlink()
    add_subscribers(site.store, 3, languages=("en", "fr", "pt"), now=NOW)
    sent = run(site, site_env, "send", "zero-draft", "--json")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["sent"] == 3
    messages = outbox(site)
    fr, pt = html_of(messages["fr"]), html_of(messages["pt"])
    assert "Signer la déclaration" in fr and "avant-projet" in fr
    assert "Endorse the declaration" in pt  # the English text, in a Portuguese frame
    assert "Cancelar a inscrição" in pt or "inscri" in pt
    assert "hlm2021-hub.example.org/declaration/sign-on" not in fr  # every link goes through /c/...
    assert "/c/" in fr
    with site.store.read() as conn:
        rows = conn.execute(select(links.c.language, links.c.url, links.c.label)).all()
    labelled = {(r.language, r.label) for r in rows if "declaration/sign-on" in r.url}
    assert labelled == {
        ("en", "declaration-sign-on"),
        ("fr", "declaration-sign-on"),
        ("pt", "declaration-sign-on"),
    }
    assert {r.label for r in rows if r.language == "fr" and "declaration/zero-draft" in r.url} == {
        "zero-draft"
    }


def test_content_errors_are_located(site: Any, site_env: dict[str, str]) -> None:
    folder: Path = site.root / "content/zero-draft"
    (folder / "fr.md").write_text("---\nsubject: x\ntitel: y\n---\n", encoding="utf-8")
    (folder / "xx.md").write_text("---\nsubject: x\n---\nHello", encoding="utf-8")
    result = run(site, site_env, "check")
    assert result.exit_code == 1
    assert f"{folder / 'fr.md'}:3:1: unknown field 'titel'" in result.stdout
    assert f"{folder / 'xx.md'}: unknown language 'xx'" in result.stdout
    (folder / "fr.md").unlink()
    (folder / "xx.md").unlink()
    (folder / "es.md").write_text("---\nsubject: x\nsource: en\n---\n\n   \n", encoding="utf-8")
    result = run(site, site_env, "check")
    assert result.exit_code == 1
    assert f"{folder / 'es.md'}: the body renders to nothing" in result.stdout
