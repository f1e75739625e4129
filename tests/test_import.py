"""CSV import, export, show and forget with real files, broken ones included, on both stores."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from newsletter.audience import importer
from newsletter.audience import subscribers as people
from newsletter.audience.importer import import_csv
from newsletter.cli import app
from newsletter.errors import InputError
from newsletter.store.tables import consents, sends, subscribers, subscriptions, suppressions

HEADER = "email,name,language,timezone,country,organisation\n"
BASIS = "signed up at the 2021 partner meeting"
CONSENT = ["--consent", BASIS, "--status", "confirmed"]


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def count(store, table, *where):
    with store.read() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def statuses(store, slug="members"):
    from newsletter.store.tables import lists

    with store.read() as conn:
        rows = conn.execute(
            sa.select(subscribers.c.email, subscriptions.c.status)
            .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
            .join(lists, lists.c.id == subscriptions.c.list_id)
            .where(lists.c.slug == slug)
        ).all()
    return dict(rows)


def test_import_counts_and_stores_every_column(site, tmp_path):
    path = write(
        tmp_path / "people.csv",
        HEADER
        + "Ana@Example.org,Ana Souza,pt,America/Sao_Paulo,br,GNP+\n"
        + "olga@example.org,Ольга,ru,Europe/Moscow,RU,EHRA\n"
        + "jean@example.org,Jean,fr_FR,Europe/Paris,FR,\n",
    )
    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert (report.accepted, report.updated, report.unchanged, report.rejected) == (3, 0, 0, [])
    data = people.show(site.store, "ANA@example.ORG")
    assert data is not None
    assert data["subscriber"] | {} == data["subscriber"]
    ana = data["subscriber"]
    assert (ana["email"], ana["name"], ana["language"], ana["timezone"], ana["country"]) == (
        "ana@example.org",
        "Ana Souza",
        "pt",
        "America/Sao_Paulo",
        "BR",
    )
    assert ana["attributes"] == {"organisation": "GNP+"}
    assert data["subscriptions"][0]["list"] == "members" and data["subscriptions"][0]["status"] == "confirmed"
    assert data["consents"][0]["source"] == "import"
    assert data["consents"][0]["detail"] == f"{BASIS}; people.csv line 2; status confirmed"
    assert people.show(site.store, "jean@example.org")["subscriber"]["language"] == "fr"


def test_reimport_is_unchanged_then_updated(site, tmp_path):
    path = write(tmp_path / "a.csv", HEADER + "ana@example.org,Ana,pt,,,\n")
    import_csv(site, path, "members", consent=BASIS, status="confirmed")
    again = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert (again.accepted, again.updated, again.unchanged) == (0, 0, 1)
    write(path, HEADER + "ANA@example.org,Ana Souza,es,,,\n")
    changed = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert (changed.accepted, changed.updated, changed.unchanged) == (0, 1, 0)
    assert people.show(site.store, "ana@example.org")["subscriber"]["language"] == "es"
    other_list = import_csv(site, path, "drug-user-advocates", consent=BASIS, status="confirmed")
    assert (other_list.accepted, other_list.updated, other_list.unchanged) == (1, 0, 0)
    assert count(site.store, subscribers) == 1


def test_duplicates_are_found_case_insensitively_across_chunks(site, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK", 2)
    path = write(tmp_path / "d.csv", "email\nA@x.org\nb@x.org\nc@x.org\na@X.ORG\nB@x.org\nb@x.org\n")
    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert report.accepted == 3
    assert [(r.line, r.reason) for r in report.rejected] == [
        (5, "duplicate of an earlier row in this file"),
        (6, "duplicate of an earlier row in this file"),
        (7, "duplicate of line 6"),
    ]


def test_bad_rows_are_rejected_with_line_and_reason_and_good_rows_go_in(site, tmp_path):
    path = write(
        tmp_path / "bad.csv",
        HEADER
        + "good@example.org,Good,en,UTC,KE,\n"
        + "not-an-address,X,en,,,\n"
        + 'two@example.org,"Multi\nline name",xx,,,\n'
        + "three@example.org,T,en,Mars/Olympus,,\n"
        + "four@example.org,F,en,UTC,ZZ,\n"
        + "five@example.org,ragged\n"
        + "six@example.org,S,en,UTC,KE,org,extra\n"
        + ",,,,,\n"
        + "seven@example.org,Seven,,,,\n",
    )
    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    reasons = {r.line: r.reason for r in report.rejected}
    assert report.accepted == 2
    assert "invalid email address 'not-an-address'" in reasons[3]
    assert "unknown language 'xx'" in reasons[4] and "en, fr, es, ru, pt" in reasons[4]
    assert "unknown timezone 'Mars/Olympus'" in reasons[6]
    assert "unknown country 'ZZ'" in reasons[7]
    assert reasons[8] == "row has 2 fields but the header has 6 (check quotes and delimiters)"
    assert reasons[9].startswith("row has 7 fields")
    assert set(reasons) == {3, 4, 6, 7, 8, 9}  # the record on lines 4-5 is reported at its first line
    assert people.show(site.store, "seven@example.org")["subscriber"]["language"] == "en"


def test_missing_email_column_imports_nothing(site, tmp_path):
    path = write(tmp_path / "noemail.csv", "name,language\nAna,pt\n")
    with pytest.raises(InputError, match=r"noemail.csv:1: no email column"):
        import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert count(site.store, subscribers) == 0


def test_unknown_list_is_an_error(site, tmp_path):
    path = write(tmp_path / "x.csv", "email\na@example.org\n")
    with pytest.raises(Exception, match="unknown list 'nope'; lists: drug-user-advocates"):
        import_csv(site, path, "nope", consent=BASIS, status="confirmed")


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", b"", "utf-8"), ("utf-8", b"\xef\xbb\xbf", "utf-8"), ("cp1252", b"", "cp1252")],
)
def test_encodings(site, tmp_path, encoding, bom, expected):
    path = tmp_path / "enc.csv"
    path.write_bytes(bom + "email;name;country\njosé@example.org;José Café;ES\n".encode(encoding))
    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert report.encoding == expected and report.accepted == 1, report.rejected
    person = people.show(site.store, "josé@example.org")["subscriber"]
    assert person["name"] == "José Café" and person["country"] == "ES"


def test_reimport_never_resubscribes_the_unsubscribed_bounced_or_complained(site, tmp_path):
    path = write(tmp_path / "s.csv", "email\nu@example.org\nb@example.org\nc@example.org\n")
    import_csv(site, path, "members", consent=BASIS, status="confirmed")
    with site.store.write() as conn:
        for email, status in (
            ("u@example.org", "unsubscribed"),
            ("b@example.org", "bounced"),
            ("c@example.org", "complained"),
        ):
            sid = conn.scalar(sa.select(subscribers.c.id).where(subscribers.c.email == email))
            conn.execute(
                sa.update(subscriptions).where(subscriptions.c.subscriber_id == sid).values(status=status)
            )
    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert report.unchanged == 3
    assert statuses(site.store) == {
        "u@example.org": "unsubscribed",
        "b@example.org": "bounced",
        "c@example.org": "complained",
    }


def test_forget_erases_the_person_and_blocks_reimport(site, tmp_path):
    path = write(tmp_path / "f.csv", "email,name\nforget.me@example.org,Forget Me\nkeep@example.org,Keep\n")
    import_csv(site, path, "members", consent=BASIS, status="confirmed")
    from newsletter.store import now_utc
    from newsletter.store.tables import occurrences

    with site.store.write() as conn:
        occ = conn.execute(
            occurrences.insert().values(
                key="t",
                campaign="digest",
                due_at=now_utc(),
                status="sent",
                created_at=now_utc(),
                updated_at=now_utc(),
            )
        ).inserted_primary_key[0]
        sid = conn.scalar(sa.select(subscribers.c.id).where(subscribers.c.email == "forget.me@example.org"))
        conn.execute(
            sends.insert().values(
                occurrence_id=occ,
                subscriber_id=sid,
                email="forget.me@example.org",
                language="en",
                status="sent",
                created_at=now_utc(),
            )
        )
    assert people.forget(site.store, "Forget.Me@example.org") is True
    assert people.show(site.store, "forget.me@example.org") is None
    with site.store.read() as conn:
        everything = " ".join(
            str(v)
            for t in (subscribers, consents, sends, subscriptions)
            for row in conn.execute(sa.select(t))
            for v in row
        )
    assert "forget.me" not in everything and "Forget Me" not in everything
    assert count(site.store, suppressions) == 1
    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert [(r.line, r.email) for r in report.rejected] == [(2, "forget.me@example.org")]
    assert "suppression list" in report.rejected[0].reason


def test_export_round_trips_through_import(site, tmp_path):
    path = write(
        tmp_path / "in.csv",
        HEADER
        + "ana@example.org,Ana,pt,America/Sao_Paulo,BR,GNP+\n"
        + "olga@example.org,Ольга,ru,Europe/Moscow,RU,\n",
    )
    import_csv(site, path, "members", consent=BASIS, status="confirmed")
    out = io.StringIO()
    assert people.export_csv(site.store, out, "members") == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[1] == {
        "email": "olga@example.org",
        "name": "Ольга",
        "language": "ru",
        "timezone": "Europe/Moscow",
        "country": "RU",
        "organisation": "",
    }
    back = write(tmp_path / "back.csv", out.getvalue())
    again = import_csv(site, back, "members", consent=BASIS, status="confirmed")
    assert (again.accepted, again.updated, again.unchanged, again.rejected) == (0, 0, 2, [])


def test_a_failure_mid_import_leaves_the_store_as_it_was(site, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK", 2)
    path = write(tmp_path / "big.csv", "email\n" + "".join(f"p{i}@example.org\n" for i in range(10)))
    calls = {"n": 0}
    real_flush = importer._Importer.flush

    def failing_flush(self, chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real_flush(self, chunk)

    monkeypatch.setattr(importer._Importer, "flush", failing_flush)
    with pytest.raises(OSError):
        import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert count(site.store, subscribers) == 0 and count(site.store, subscriptions) == 0


def test_kill_9_mid_import_leaves_the_store_as_it_was(site, site_dir, site_env, tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("w") as fh:
        fh.write("email,name\n")
        for i in range(150_000):
            fh.write(f"person{i}@example{i % 97}.org,Person {i}\n")
    env = {**os.environ, **site_env}
    if not site.store.is_sqlite:  # so that _import_is_writing finds the import's own connection
        env["NEWSLETTER_DATABASE_URL"] += f"&application_name={IMPORT_APP}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newsletter",
            "subscribers",
            "import",
            str(path),
            "--list",
            "members",
            "--consent",
            BASIS,
            "--status",
            "confirmed",
            "--site",
            str(site_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Kill it once it is writing inside its one transaction (rows inserted but not committed). The
    # wait ends as soon as it writes; the long limit is for a loaded machine still reading the file.
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None and not _import_is_writing(site):
            time.sleep(0.05)
        writing = proc.poll() is None and _import_is_writing(site)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate()
    finally:
        if proc.poll() is None:  # never leave the import running behind a failed assertion
            proc.kill()
            proc.communicate()
    assert writing, "the import never got to writing: " + stderr.decode()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()
    assert count(site.store, subscribers) == 0
    assert count(site.store, subscriptions) == 0


def test_cli_import_json_and_show_forget(site, site_dir, site_env, tmp_path):
    path = write(tmp_path / "c.csv", "email,name\nana@example.org,Ana\nbad,Bad\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["subscribers", "import", str(path), "--list", "members", "--site", str(site_dir), "--json"]
        + CONSENT,
        env=site_env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accepted"] == 1 and report["rejected"] == 1
    assert report["rejected_rows"][0]["line"] == 3
    shown = runner.invoke(
        app, ["subscribers", "show", "ana@example.org", "--site", str(site_dir)], env=site_env
    )
    assert json.loads(shown.stdout)["subscriber"]["name"] == "Ana"
    out = tmp_path / "out.csv"
    exported = runner.invoke(
        app,
        ["subscribers", "export", "--list", "members", "--out", str(out), "--site", str(site_dir)],
        env=site_env,
    )
    assert exported.exit_code == 0 and out.read_text().splitlines()[1].startswith("ana@example.org,Ana")
    forgot = runner.invoke(
        app, ["subscribers", "forget", "ana@example.org", "--site", str(site_dir)], env=site_env
    )
    assert forgot.exit_code == 0 and "forgot" in forgot.stdout
    missing = runner.invoke(
        app,
        ["subscribers", "import", str(tmp_path / "nope.csv"), "--list", "members", "--site", str(site_dir)]
        + CONSENT,
        env=site_env,
    )
    assert missing.exit_code == 2 and "no such file" in missing.stderr


IMPORT_APP = "newsletter-test-kill9-import"


def _import_is_writing(site) -> bool:
    if site.store.is_sqlite:
        db_file = sa.engine.make_url(site.settings["database_url"]).database
        wal = os.path.join(os.path.dirname(db_file), os.path.basename(db_file) + "-wal")
        return os.path.exists(wal) and os.path.getsize(wal) > 1_000_000
    # A transaction of the import's that has written (it holds a transaction id), whatever statement
    # it is on: matching the statement's text missed an import that was copying consents.
    with site.store.read() as conn:
        return bool(
            conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
                    " AND backend_xid IS NOT NULL"
                ),
                {"app": IMPORT_APP},
            )
        )
