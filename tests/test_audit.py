"""The audit log: each staff action from the CLI and the dashboard, filters, CSV, forget; both stores."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from newsletter import audit
from newsletter.cli import app
from newsletter.report.export import as_csv
from newsletter.schedule import stored
from newsletter.store import now_utc
from newsletter.store.tables import occurrences, send_batches
from tests.support.report import AdminSite
from tests.support.track import LiveServer
from tests.test_admin_http import _csrf, _in_doubt_batch, _scheduled, login


def _log(store) -> list[dict]:
    return list(reversed(audit.entries(store, limit=None)))


def test_record_and_filter_and_scrub(store) -> None:
    at = datetime(2021, 4, 1, 9, tzinfo=UTC)
    first = audit.record(
        store, "ana@hub.org", "compose", "webinar-april-1d", {"lang": "fr"}, "web: POST /x", now=at
    )
    with store.write() as conn:
        audit.record(
            conn,
            "cli:root",
            "unsubscribe",
            "kim@example.org",
            {"by": "kim@example.org"},
            subject="kim@example.org",
        )
    assert first > 0
    assert [e["action"] for e in audit.entries(store)] == ["unsubscribe", "compose"]
    assert [e["action"] for e in audit.entries(store, audit.Filter(actor="ana@hub.org"))] == ["compose"]
    assert (
        audit.entries(store, audit.Filter(since=datetime(2021, 4, 2, tzinfo=UTC)))[0]["action"]
        == "unsubscribe"
    )
    assert audit.entries(store, audit.Filter(until=at)) == []
    assert [e["target"] for e in audit.entries(store, audit.Filter(target="april"))] == ["webinar-april-1d"]
    with store.write() as conn:
        assert audit.scrub(conn, "Kim@Example.org") == 1
    entry = audit.entries(store, audit.Filter(action="unsubscribe"))[0]
    assert entry["target"] == audit.FORGOTTEN and entry["details"] == {"by": audit.FORGOTTEN}


def test_cli_actions_are_recorded(site, site_dir, site_env, tmp_path) -> None:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> str:
        result = runner.invoke(app, [*args, "--site", str(site_dir)], env=site_env, input=input)
        assert result.exit_code == 0, result.output
        return result.stdout

    people = tmp_path / "people.csv"
    people.write_text("email,name,language,status\nkim@example.org,Kim,en,subscribed\n")
    run("subscribers", "import", str(people), "--list", "members", "--consent", "partner list 2021")
    run(
        "users",
        "add",
        "ana@hub.example.org",
        "--role",
        "staff",
        "--password-stdin",
        input="a long password\n",
    )
    run(
        "send", "webinar-april-1d", "--event", "webinar-april", "--test", "me@hub.example.org", "--lang", "fr"
    )
    run("send", "weekly-digest", "--force")
    from newsletter.schedule.sync import reconcile

    reconcile(site, datetime(2021, 4, 1, tzinfo=UTC))  # spring 2021 stored, as `run` would then
    with site.store.read() as conn:
        key = conn.scalar(select(occurrences.c.key).where(occurrences.c.status == "scheduled").limit(1))
    run("schedule", "pause", key)
    run("schedule", "resume", key)
    run("schedule", "cancel", key)
    with site.store.write() as conn:
        occ = conn.scalar(select(occurrences.c.id).limit(1))
        batch = conn.execute(
            send_batches.insert().values(
                occurrence_id=occ,
                language="en",
                transport="sendgrid",
                status="in_doubt",
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
    run("in-doubt", "--batch", str(batch), "--decide", "failed")
    run("subscribers", "forget", "kim@example.org")
    entries = _log(site.store)
    assert [e["action"] for e in entries] == [
        "import",
        "user-add",
        "test-send",
        "send",
        "pause",
        "resume",
        "cancel",
        "in-doubt",
        "forget",
    ]
    assert all(e["actor"].startswith("cli:") for e in entries)
    by = {e["action"]: e for e in entries}
    assert by["import"]["target"] == "members" and by["import"]["details"]["accepted"] == 1
    assert by["import"]["details"]["consent"] == "partner list 2021"
    assert by["import"]["via"].startswith("cli: newsletter subscribers import ")
    assert by["user-add"]["target"] == "ana@hub.example.org" and by["user-add"]["details"] == {
        "role": "staff"
    }
    assert by["test-send"]["details"]["to"] == "me@hub.example.org"
    assert by["pause"]["target"] == key and by["cancel"]["details"]["status"] == "cancelled"
    assert by["in-doubt"]["details"]["decision"] == "failed"
    assert by["forget"]["target"] == audit.FORGOTTEN
    assert "kim@example.org" not in json.dumps(entries)
    shown = json.loads(run("audit", "--json", "--action", "pause"))
    assert [e["target"] for e in shown] == [key]
    table = run("audit", "--csv")
    rows = list(csv.reader(io.StringIO(table)))
    assert rows[0] == list(audit.COLUMNS) and len(rows) == 1 + len(entries)


def test_dashboard_actions_are_recorded_and_shown(admin_site: AdminSite, admin_server: LiveServer) -> None:
    site = admin_site.site
    with httpx.Client(base_url=admin_server.url, follow_redirects=False, timeout=30) as client:
        assert login(client, admin_site.staff).status_code == 303
        token = _csrf(client.get("/admin/schedule").text)
        scheduled = _scheduled(admin_site)
        for action in ("pause", "resume", "cancel"):
            r = client.post(f"/admin/occurrences/{scheduled}/{action}", data={"csrf": token})
            assert r.status_code == 303, r.text
        batch, _ids = _in_doubt_batch(admin_site)
        assert (
            client.post(
                f"/admin/batches/{batch}/decide", data={"csrf": token, "decision": "sent"}
            ).status_code
            == 303
        )
        r = client.post(
            "/admin/test-send", data={"csrf": token, "campaign": "webinar-april-1d", "language": "es"}
        )
        assert r.status_code == 303, r.text
        for path, email in (
            ("unsubscribe", "person1@example.org"),
            ("unsubscribe", "person2@example.org"),
            ("forget", "person2@example.org"),
        ):
            r = client.post(f"/admin/subscribers/{path}", data={"csrf": token, "email": email})
            assert r.status_code == 303
        entries = _log(site.store)
        assert [e["action"] for e in entries] == [
            "pause",
            "resume",
            "cancel",
            "in-doubt",
            "test-send",
            "unsubscribe",
            "unsubscribe",
            "forget",
        ]
        assert {e["actor"] for e in entries} == {admin_site.staff}
        assert entries[0]["via"] == f"web: POST /admin/occurrences/{scheduled}/pause"
        page = client.get("/admin/audit", params={"action": "pause"})
        assert page.status_code == 200
        assert page.text.count('data-action="pause"') == 1 and 'data-action="cancel"' not in page.text
        exported = client.get("/admin/audit.csv", params={"actor": admin_site.staff})
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert len(rows) == 1 + len(entries)
        assert "person2@example.org" not in exported.text and "person1@example.org" in exported.text
        assert client.get("/admin/audit", params={"since": "nope"}).status_code == 400


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_audit_csv_is_formula_safe(store, value: str) -> None:
    audit.record(store, "cli:root", "edit", value, {"note": value})
    text = "".join(as_csv(audit.csv_rows(audit.entries(store))))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1][4] == "'" + value


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(["actor", "action", "target", "since", "until"]),
        st.text(max_size=40) | st.sampled_from(["9999-12-31", "0001-01-01T00:00+05:00", "2021-06-01"]),
        max_size=5,
    )
)
def test_audit_filters_from_a_query_are_read_or_refused(params: dict[str, str]) -> None:
    from urllib.parse import urlencode

    from starlette.requests import Request

    from newsletter.errors import InputError
    from newsletter.web.admin.audit import _filter

    request = Request({"type": "http", "query_string": urlencode(params).encode(), "headers": []})
    try:
        where = _filter(request)
    except InputError as exc:
        assert "expected a date" in str(exc)
        return
    assert where.actor == params.get("actor", "").strip()
    assert (where.since is None) == (not params.get("since", "").strip())


def test_composing_is_recorded(admin_site: AdminSite, admin_server: LiveServer) -> None:
    """Creating, editing and test-sending a composed campaign each leave an entry."""
    site = admin_site.site
    later = (now_utc() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    fields = {
        "id": "audited-call",
        "template": "message",
        "lists": "members",
        "source": "en",
        "trigger": "at",
        "at": later,
        "timezone": "Europe/Paris",
        "subject_en": "The zero draft is out",
        "body_en": "Read it and send us your inputs.",
    }
    with httpx.Client(base_url=admin_server.url, follow_redirects=False, timeout=60) as client:
        assert login(client, admin_site.staff).status_code == 303
        token = _csrf(client.get("/admin/compose/new").text)
        r = client.post(
            "/admin/compose/save", data={**fields, "csrf": token, "revision": "0", "action": "draft"}
        )
        assert r.status_code == 303, r.text
        first = stored.latest(site.store, "audited-call")
        assert first is not None
        edited = {**fields, "body_en": "Read it now.", "revision": str(first.revision), "action": "schedule"}
        r = client.post("/admin/compose/save", data={**edited, "csrf": token})
        assert r.status_code == 303, r.text
        r = client.post("/admin/compose/audited-call/test", data={"csrf": token, "test_lang": "en"})
        assert r.status_code == 303, r.text
    entries = [e for e in _log(site.store) if e["target"] == "audited-call"]
    assert [e["action"] for e in entries] == ["compose", "edit", "test-send"]
    assert entries[0]["details"]["status"] == "draft" and entries[1]["details"]["status"] == "scheduled"
    assert {e["actor"] for e in entries} == {admin_site.staff}
    assert entries[1]["via"] == "web: POST /admin/compose/save"
