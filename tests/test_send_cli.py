"""`newsletter send` and `newsletter worker` end to end on a copy of the example site."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.schedule.load import load_schedules
from newsletter.send import ledger
from newsletter.send.engine import enqueue_occurrence
from tests.support.send import FaultySendGrid, add_subscribers

NOW = datetime(2021, 6, 7, 8, 0, tzinfo=UTC)


def run(site: Any, env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--site", str(site.root)], env=env)


def test_dry_run_counts_per_language_and_sends_nothing(send_site: Any, site_env: dict[str, str]) -> None:
    add_subscribers(send_site.store, 12, languages=("en", "fr", "es", "ru", "pt", "pt-BR"), now=NOW)
    result = run(send_site, site_env, "send", "weekly-digest", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plans = {p["language"]: p for p in json.loads(result.stdout)}
    assert {lang: p["recipients"] for lang, p in plans.items()} == {
        "en": 2,
        "fr": 2,
        "es": 2,
        "ru": 2,
        "pt": 4,
    }
    assert all(p["subject"] and p["html_bytes"] > 1000 and not p["error"] for p in plans.values())
    assert not send_site.outbox_dir.exists() or not any(send_site.outbox_dir.iterdir())


def test_test_copy_goes_to_one_address_in_the_language_asked(
    send_site: Any, site_env: dict[str, str]
) -> None:
    result = run(
        send_site, site_env, "send", "weekly-digest", "--test", "Editor@Example.org", "--lang", "ru", "--json"
    )
    assert result.exit_code == 0, result.output
    sent = json.loads(result.stdout)
    assert sent["to"] == "editor@example.org" and sent["language"] == "ru" and sent["transport"] == "outbox"
    data = (send_site.outbox_dir / sent["id"]).read_bytes()
    assert b"Content-Language: ru" in data and b"Subject: =?utf-8?" in data


def test_unknown_campaign_or_language_is_a_clear_error(send_site: Any, site_env: dict[str, str]) -> None:
    result = run(send_site, site_env, "send", "no-such-campaign")
    assert result.exit_code == 2 and "no campaign 'no-such-campaign'" in result.output
    result = run(send_site, site_env, "send", "weekly-digest", "--test", "a@example.org", "--lang", "de")
    assert result.exit_code == 2 and "unknown language 'de'" in result.output


def test_send_now_goes_through_the_ledger(send_site: Any, site_env: dict[str, str]) -> None:
    add_subscribers(send_site.store, 7, now=NOW)
    result = run(send_site, site_env, "send", "weekly-digest", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sent"] == 7 and summary["errors"] == []
    assert len(list(send_site.outbox_dir.iterdir())) == 7


def test_refused_sendgrid_key_pauses_with_a_clear_message(
    send_site: Any, site_env: dict[str, str], faulty_sendgrid: FaultySendGrid
) -> None:
    add_subscribers(send_site.store, 3, languages=("en",), now=NOW)
    faulty_sendgrid.script = [
        ("status", 401, {}, {"errors": [{"message": "The provided authorization grant is invalid"}]})
    ]
    env = {
        **site_env,
        "NEWSLETTER_SENDGRID_API_KEY": "SG.bad",
        "NEWSLETTER_SENDGRID_HOST": faulty_sendgrid.url,
    }
    result = run(send_site, env, "send", "weekly-digest", "--json")
    assert result.exit_code == 2
    assert "SendGrid refused the API key (401: The provided authorization grant is invalid)" in result.output
    assert "occurrence 1 is paused" in result.output
    assert ledger.counts(send_site.store, 1) == {"pending": 3}
    faulty_sendgrid.script = []  # the key is fixed
    resumed = run(send_site, env, "resume-send", "1")
    assert resumed.exit_code == 0, resumed.output
    assert run(send_site, env, "worker", "--once").exit_code == 0
    assert ledger.counts(send_site.store, 1) == {"sent": 3}


def test_worker_once_drains_and_in_doubt_lists_and_decides(send_site: Any, site_env: dict[str, str]) -> None:
    from newsletter.schedule.occurrences import create_adhoc

    add_subscribers(send_site.store, 4, languages=("en",), now=NOW)
    occ = create_adhoc(send_site.store, load_schedules(send_site), "weekly-digest", now=NOW)
    enqueue_occurrence(send_site, occ, NOW, load_schedules(send_site))
    claim = ledger.claim_batch(send_site.store, transport="sendgrid", worker="w", limit=2, now=NOW, lease=60)
    assert claim is not None
    ledger.mark_in_flight(send_site.store, claim.batch_id, NOW, 60)
    ledger.close_batch(send_site.store, claim.batch_id, "in_doubt", "timeout after sending", NOW)
    result = run(send_site, site_env, "worker", "--once")
    assert result.exit_code == 0, result.output
    assert ledger.counts(send_site.store, occ) == {"sent": 2, "in_doubt": 2}
    listed = json.loads(run(send_site, site_env, "in-doubt", "--json").stdout)
    assert [(b["id"], b["messages"], b["error"]) for b in listed] == [
        (claim.batch_id, 2, "timeout after sending")
    ]
    decided = run(send_site, site_env, "in-doubt", "--batch", str(claim.batch_id), "--decide", "resend")
    assert decided.exit_code == 0, decided.output
    assert run(send_site, site_env, "worker", "--once").exit_code == 0
    assert ledger.counts(send_site.store, occ) == {"sent": 4}


def test_a_digest_with_nothing_new_is_not_sent_unless_forced(site: Any, site_env: dict[str, str]) -> None:
    """The example site's weekly digest is only_if_new_items: a manual send follows the same rule."""
    from newsletter.feeds.pull import pull_feeds

    add_subscribers(site.store, 3, languages=("en", "fr", "ru"), now=NOW)
    pull_feeds(site)  # a first pull marks every item as already seen: nothing is new
    skipped = run(site, site_env, "send", "weekly-digest", "--json")
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.stdout)["skipped"].startswith("no new items since")
    assert not site.outbox_dir.exists() or not any(site.outbox_dir.iterdir())
    forced = run(site, site_env, "send", "weekly-digest", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["sent"] == 3


def test_a_digest_goes_out_once_per_batch_of_new_items(site: Any, site_env: dict[str, str]) -> None:
    from newsletter.feeds.pull import pull_feeds

    add_subscribers(site.store, 2, languages=("es", "pt"), now=NOW)
    pull_feeds(site, backfill=True)
    first = run(site, site_env, "send", "weekly-digest", "--json")
    assert json.loads(first.stdout)["sent"] == 2, first.output
    again = run(site, site_env, "send", "weekly-digest", "--json")
    assert "skipped" in json.loads(again.stdout), again.output
    assert len(list(site.outbox_dir.iterdir())) == 2
