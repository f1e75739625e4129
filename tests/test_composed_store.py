"""Composed campaigns in the store: revisions, drafts, the live source, conflicts, bad fields."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from newsletter.errors import Conflict
from newsletter.schedule import stored
from newsletter.schedule.compose import Form, build
from newsletter.schedule.config import parse_schedules

NOW = datetime(2021, 4, 20, 8, 0, tzinfo=UTC)
EN = {
    "subject": "Inputs wanted",
    "preheader": "By 10 May",
    "body": 'Send us [your inputs](https://hub.example.org/in "declaration-inputs").',
}
FR = {
    "subject": "Vos contributions",
    "preheader": "",
    "body": 'Envoyez-nous [vos contributions](https://hub.example.org/in "declaration-inputs").',
}


def form(**changes: Any) -> Form:
    values: dict[str, Any] = {
        "id": "inputs-call",
        "lists": ["members"],
        "languages": ["en", "fr"],
        "source": "en",
        "trigger": "at",
        "at": "2021-05-03T09:00",
        "timezone": "Europe/Paris",
        "texts": {"en": dict(EN), "fr": dict(FR)},
    }
    values.update(changes)
    return Form(**values)


def built(site: Any, f: Form, previous: Any = None, creating: bool = True) -> Any:
    return build(
        site, f, schedules=parse_schedules(site), previous=previous, creating=creating, taken=set(), now=NOW
    )


def save(site: Any, b: Any, based_on: int, status: str = "scheduled", by: str = "ana@hub.example.org") -> Any:
    return stored.save(
        site.store,
        campaign_id="inputs-call",
        based_on=based_on,
        status=status,
        entry=b.entry,  # type: ignore[arg-type]
        texts=b.texts,
        by=by,
        now=NOW,
    )


def test_a_scheduled_revision_is_a_campaign_like_a_file_one(site: Any) -> None:
    b = built(site, form())
    assert b.errors == {}
    save(site, b, 0, "draft")
    assert stored.StoreSource(site).load().campaigns == {}  # a draft is not live
    save(site, b, 1, "scheduled")
    campaign = stored.StoreSource(site).load().campaigns["inputs-call"]
    assert campaign.template == "message" and campaign.audience.lists == ("members",)
    assert campaign.trigger.kind == "at" and campaign.trigger.at == datetime(2021, 5, 3, 7, 0, tzinfo=UTC)
    assert campaign.content is not None and campaign.content.statuses(["en", "fr", "es"]) == {
        "en": "source",
        "fr": "translated",
        "es": "missing",
    }
    # A draft edit leaves the scheduled revision live; unscheduling takes it out.
    edited = built(
        site,
        form(texts={"en": {**EN, "subject": "Changed"}, "fr": dict(FR)}),
        stored.latest(site.store, "inputs-call"),
        False,
    )
    save(site, edited, 2, "draft")
    assert (
        stored.StoreSource(site).load().campaigns["inputs-call"].content.texts["en"].subject
        == "Inputs wanted"
    )  # type: ignore[union-attr]
    save(site, edited, 3, "unscheduled")
    assert stored.StoreSource(site).load().campaigns == {}
    assert [r.revision for r in stored.history(site.store, "inputs-call")] == [4, 3, 2, 1]
    assert {r.saved_by for r in stored.history(site.store, "inputs-call")} == {"ana@hub.example.org"}


def test_editing_the_source_outdates_the_untouched_translation(site: Any) -> None:
    first = save(site, built(site, form()), 0)
    changed = built(
        site, form(texts={"en": {**EN, "body": EN["body"] + " Now."}, "fr": dict(FR)}), first, False
    )
    second = save(site, changed, 1)
    content = second.content("en")
    assert content.status("fr") == "outdated"
    restamped = built(
        site, form(texts={"en": changed.texts["en"], "fr": dict(FR)}, stamped={"fr"}), second, False
    )
    assert save(site, restamped, 2).content("en").status("fr") == "translated"


def test_a_save_based_on_an_old_revision_is_refused_and_writes_nothing(site: Any) -> None:
    b = built(site, form())
    save(site, b, 0)
    save(site, b, 1, by="ana@hub.example.org")
    with pytest.raises(
        Conflict, match=r"ana@hub.example.org saved campaign 'inputs-call' \(revision 2\).*not saved"
    ):
        save(site, b, 1, by="bo@hub.example.org")
    with pytest.raises(Conflict, match="already exists"):
        save(site, b, 0, by="bo@hub.example.org")
    assert [r.revision for r in stored.history(site.store, "inputs-call")] == [2, 1]


@pytest.mark.postgres
def test_two_concurrent_saves_of_one_revision_let_exactly_one_in(site: Any) -> None:
    b = built(site, form())
    save(site, b, 0)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(who: str) -> None:
        barrier.wait()
        try:
            save(site, b, 1, by=who)
            results.append("saved")
        except Conflict:
            results.append("refused")

    threads = [threading.Thread(target=attempt, args=(f"p{i}@x.org",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["refused", "refused", "refused", "saved"]
    assert [r.revision for r in stored.history(site.store, "inputs-call")] == [2, 1]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"at": "2021-04-01T09:00"}, "at", "is in the past"),
        ({"lists": ["nobody"]}, "lists", "unknown list 'nobody'"),
        (
            {"texts": {"en": {**EN, "subject": ""}, "fr": dict(FR)}},
            "subject_en",
            "(the source language) is empty",
        ),
        (
            {"texts": {"en": {**EN, "body": "  \n\n ![x](http://a.org/i.png)"}, "fr": dict(FR)}},
            "body_en",
            None,
        ),
        ({"texts": {"en": dict(EN), "fr": {**FR, "body": "  "}}}, "body_fr", "renders to nothing"),
        ({"id": "zero-draft"}, "id", "already used"),
        ({"id": "Bad Id"}, "id", "use lowercase"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"trigger": "before", "event": "webinar-april", "offset": "1d", "per_session": True}, None, None),
        ({"trigger": "before", "event": "nope", "offset": "1d"}, "event", "unknown event 'nope'"),
        ({"local_time": "25:00"}, "local_time", "local time"),
        ({"quiet_from": "22:00"}, "quiet_hours", "give both"),
    ],
)
def test_bad_fields_are_named(
    site: Any, changes: dict[str, Any], field: str | None, message: str | None
) -> None:
    b = built(site, form(**changes))
    if field is None:
        assert b.errors == {} and b.campaign is not None
        return
    assert field in b.errors, b.errors
    assert message is None or message in b.errors[field], b.errors[field]


def test_list_and_export_write_what_files_would_hold(
    site: Any, site_env: dict[str, str], tmp_path: Any
) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from newsletter.cli import app
    from newsletter.schedule.config import load_schedules

    save(site, built(site, form()), 0, "scheduled")
    run = CliRunner().invoke
    listed = run(app, ["campaigns", "list", "--json", "--site", str(site.root)], env=site_env)
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["revision"], row["live"], row["saved_by"]) == (
        "inputs-call",
        1,
        "scheduled",
        "ana@hub.example.org",
    )
    out = tmp_path / "export"
    done = run(
        app, ["campaigns", "export", "inputs-call", "--out", str(out), "--site", str(site.root)], env=site_env
    )
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (out / "content/inputs-call").iterdir()) == ["en.md", "fr.md"]
    # Pasted into the site's files, it is the same campaign, with the same translation status.
    entry = yaml.safe_load((out / "inputs-call.yaml").read_text(encoding="utf-8"))["campaigns"][0]
    schedules = yaml.safe_load((site.root / "schedules.yaml").read_text(encoding="utf-8"))
    schedules["campaigns"].append(entry)
    (site.root / "schedules.yaml").write_text(yaml.safe_dump(schedules, allow_unicode=True), encoding="utf-8")
    (site.root / "content/inputs-call").mkdir()
    for path in (out / "content/inputs-call").iterdir():
        (site.root / "content/inputs-call" / path.name).write_bytes(path.read_bytes())
    from_files = load_schedules(site).campaigns["inputs-call"]
    from_store = stored.StoreSource(site).load().campaigns["inputs-call"]
    assert from_files.content is not None and from_store.content is not None
    assert from_files.content.statuses(["en", "fr"]) == {"en": "source", "fr": "translated"}
    assert from_files.trigger == from_store.trigger and from_files.audience == from_store.audience
    assert {k: t.hash for k, t in from_files.content.texts.items()} == {
        k: t.hash for k, t in from_store.content.texts.items()
    }


def test_a_scheduled_composed_campaign_goes_through_plan_send_and_stats(
    site: Any, site_env: dict[str, str]
) -> None:
    import email
    import json

    from typer.testing import CliRunner

    from newsletter.cli import app
    from tests.support.send import add_subscribers

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "--site", str(site.root)], env=site_env)
        assert result.exit_code == 0, result.output
        return result

    add_subscribers(site.store, 4, languages=("en", "fr", "es", "fr"), now=NOW)
    save(site, built(site, form()), 0, "scheduled")
    planned = json.loads(cli("plan", "--now", NOW.isoformat(), "--days", "30", "--json").stdout)["sends"]
    (ours,) = [p for p in planned if p["campaign"] == "inputs-call"]
    assert ours["timezone"] == "Europe/Paris" and ours["audience"] == 4, ours
    sent = json.loads(cli("send", "inputs-call", "--json").stdout)
    assert sent["sent"] == 4, sent
    bodies = {}
    for path in site.outbox_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        bodies[str(message["Content-Language"])] = html.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "vos contributions" in bodies["fr"] and "your inputs" in bodies["en"]
    assert set(bodies) == {"en", "fr"}  # es readers fall back to the source, in English
    stats = json.loads(cli("stats", "inputs-call", "--json").stdout)
    assert "inputs-call" in json.dumps(stats)
    # An id of schedules.yaml cannot be taken by a stored campaign, nor the reverse.
    stored.save(
        site.store,
        campaign_id="zero-draft",
        based_on=0,
        status="scheduled",
        entry=built(site, form()).entry,
        texts=built(site, form()).texts,
        by="x",
        now=NOW,
    )
    failed = CliRunner().invoke(app, ["plan", "--site", str(site.root)], env=site_env)
    assert failed.exit_code == 2 and "defined in both" in failed.output and "'zero-draft'" in failed.output


def test_a_running_process_picks_up_a_save_and_content_edits(site: Any) -> None:
    from newsletter.schedule.load import LiveSchedules

    live = LiveSchedules(site)
    assert "inputs-call" not in live.current.campaigns and not live.changed()
    save(site, built(site, form()), 0, "scheduled")
    assert live.changed() and live.refresh()
    assert "inputs-call" in live.current.campaigns
    # A content file edited on disk is picked up too (its text is loaded with the schedules).
    en = site.root / "content/zero-draft/en.md"
    en.write_text(en.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    assert live.changed() and live.refresh()
    content = live.current.campaigns["zero-draft"].content
    assert content is not None and content.status("fr") == "outdated"
