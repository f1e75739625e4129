"""Imports keep consent honest: status from the file, a stated basis, Mailchimp and listmonk exports
read as they come, suppressions for those who left; on both stores, and Hypothesis on the parsing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.audience import formats
from newsletter.audience import subscribers as people
from newsletter.audience.importer import import_csv
from newsletter.errors import InputError
from newsletter.store.tables import consents, subscribers, suppressions
from tests.test_import import count, statuses, write

DATA = Path(__file__).parent / "data" / "import"
BASIS = "imported from the 2021 partner list"


def suppressed(store, email: str) -> str | None:
    with store.read() as conn:
        return conn.scalar(
            sa.select(suppressions.c.reason).where(suppressions.c.email_hash == people.email_hash(email))
        )


def test_mailchimp_exports_as_they_come(site, tmp_path):
    files = {
        kind: shutil.copy(DATA / f"mailchimp_{kind}_members_export.csv", tmp_path)
        for kind in ("subscribed", "unsubscribed", "cleaned")
    }
    # Someone already on the list who unsubscribed in Mailchimp since.
    write(tmp_path / "here.csv", "email,status\nalready.here@example.org,confirmed\n")
    import_csv(site, tmp_path / "here.csv", "members", consent="signed up at the hub")

    report = import_csv(site, files["subscribed"], "members", consent=BASIS)
    assert (report.format, report.accepted, report.rejected) == ("mailchimp", 3, [])
    assert report.statuses == {"confirmed": 3}
    ana = people.show(site.store, "amina.okello@example.org")
    assert ana is not None
    assert ana["subscriber"]["name"] == "Amina Okello"
    assert (ana["subscriber"]["timezone"], ana["subscriber"]["country"]) == ("Africa/Kampala", "UG")
    assert ana["subscriber"]["attributes"] == {"TAGS": '"Partner 2021","Youth"'}  # system columns dropped
    (consent,) = ana["consents"]
    assert consent["detail"] == (
        f"{BASIS}; mailchimp_subscribed_members_export.csv line 2; status confirmed; "
        "opted in 2020-11-03 09:12:44; confirmed 2020-11-03 09:14:02"
    )
    joao = people.show(site.store, "joao.silva@example.org")
    assert joao["subscriber"]["attributes"]["Address"].startswith("Rua das Flores")
    assert joao["subscriber"]["attributes"]["NOTES"] == "met at AIDS 2020"

    report = import_csv(site, files["unsubscribed"], "members", consent=BASIS)
    assert (report.suppressed, report.accepted, report.rejected) == (2, 0, [])
    assert report.statuses == {"unsubscribed": 2}
    assert people.show(site.store, "left.us@example.org") is None  # no one new stored for a refusal
    assert suppressed(site.store, "left.us@example.org") == "unsubscribed"
    assert statuses(site.store)["already.here@example.org"] == "unsubscribed"
    assert suppressed(site.store, "already.here@example.org") == "unsubscribed"

    report = import_csv(site, files["cleaned"], "members", consent=BASIS)
    assert (report.suppressed, report.statuses) == (1, {"bounced": 1})
    assert suppressed(site.store, "gone@example.org") == "bounced"
    # Importing the subscribed file again changes nothing, and the unsubscribed stay out.
    again = import_csv(site, files["subscribed"], "members", consent=BASIS)
    assert (again.accepted, again.unchanged) == (0, 3)
    assert import_csv(site, files["unsubscribed"], "members", consent=BASIS).suppressed == 2
    assert statuses(site.store)["already.here@example.org"] == "unsubscribed"


def test_listmonk_export_as_it_comes(site, tmp_path):
    path = shutil.copy(DATA / "listmonk_subscribers.csv", tmp_path)
    # "enabled" says nothing about consent to this list: refused without --status, never guessed.
    refused = import_csv(site, path, "members", consent=BASIS)
    assert refused.format == "listmonk" and refused.accepted == 0
    reasons = {r.email: r.reason for r in refused.rejected}
    assert "states no consent status" in reasons["priya.raman@example.org"]
    assert "not valid JSON" in reasons["broken@example.org"]
    assert refused.suppressed == 2  # blocklisted and disabled are refusals whatever --status says
    assert suppressed(site.store, "blocked@example.org") == "unsubscribed"

    report = import_csv(site, path, "members", consent=BASIS, status="confirmed")
    assert (report.accepted, report.suppressed, len(report.rejected)) == (2, 2, 1)
    priya = people.show(site.store, "priya.raman@example.org")
    assert priya["subscriber"]["attributes"] == {
        "city": "Bengaluru",
        "projects": 3,
        "network": {"name": "INP+"},
    }
    assert statuses(site.store) == {
        "priya.raman@example.org": "confirmed",
        "ivan.petrov@example.org": "confirmed",
    }
    assert count(site.store, subscribers) == 2


def test_every_status_of_a_status_column(site, tmp_path):
    rows = {
        "subscribed": "confirmed",
        "Confirmed": "confirmed",
        "unconfirmed": "unconfirmed",
        "pending": "unconfirmed",
        "unsubscribed": None,
        "bounced": None,
        "cleaned": None,
        "complained": None,
    }
    text = "email,status\n" + "".join(f"{word.lower()}@example.org,{word}\n" for word in rows)
    text += "bogus@example.org,maybe\nblank@example.org,\n"
    report = import_csv(site, write(tmp_path / "s.csv", text), "members", consent=BASIS)
    stored = statuses(site.store)
    assert stored == {f"{w.lower()}@example.org": s for w, s in rows.items() if s}
    for word, reason in (
        ("unsubscribed", "unsubscribed"),
        ("bounced", "bounced"),
        ("cleaned", "bounced"),
        ("complained", "complained"),
    ):
        assert suppressed(site.store, f"{word}@example.org") == reason
    assert report.statuses == {
        "confirmed": 2,
        "unconfirmed": 2,
        "unsubscribed": 1,
        "bounced": 2,
        "complained": 1,
    }
    lines = {r.line: r.reason for r in report.rejected}
    assert sorted(lines) == [10, 11]
    assert "'maybe' is not one of subscribed, confirmed" in lines[10]
    assert "states no consent status" in lines[11] and "--status" in lines[11]
    # --status fills the blank one, never overrides what the file says.
    again = import_csv(site, write(tmp_path / "s.csv", text), "members", consent=BASIS, status="unconfirmed")
    assert statuses(site.store)["blank@example.org"] == "unconfirmed" and again.accepted == 1
    with site.store.read() as conn:
        details = conn.scalars(sa.select(consents.c.detail)).all()
    assert details and all(d.startswith(BASIS) for d in details)


def test_no_status_and_no_basis_are_refused_with_nothing_written(site, tmp_path):
    path = write(tmp_path / "plain.csv", "email,name\nana@example.org,Ana\n")
    with pytest.raises(InputError, match=r"plain.csv:1: the file states no consent status .* --status"):
        import_csv(site, path, "members", consent=BASIS)
    with pytest.raises(InputError, match=r"--consent: state the basis of consent"):
        import_csv(site, path, "members", consent="  ", status="confirmed")
    with pytest.raises(InputError, match=r"--status 'enabled'"):
        import_csv(site, path, "members", consent=BASIS, status="enabled")
    with pytest.raises(InputError, match=r"--status 'yes'"):
        import_csv(site, path, "members", consent=BASIS, status="yes")
    assert count(site.store, subscribers) == 0 and count(site.store, suppressions) == 0


# ------------------------------------------------------------------ Hypothesis: the pure parsing

cells = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    header=st.lists(cells, min_size=1, max_size=8), records=st.lists(st.lists(cells, max_size=9), max_size=5)
)
def test_any_header_and_row_is_read_or_refused_with_input_error(header, records):
    try:
        lay = formats.layout(header)
    except InputError as exc:
        assert "email" in str(exc) or "twice" in str(exc)
        return
    for record in records:
        try:
            row = formats.read_row(lay, record)
        except InputError:
            continue
        assert row.email and row.status in (
            None,
            "confirmed",
            "unconfirmed",
            "unsubscribed",
            "bounced",
            "complained",
        )


@settings(max_examples=200, deadline=None)
@given(
    word=st.sampled_from(sorted(formats.STATUS_WORDS)),
    pad=st.sampled_from(["", " ", "\t"]),
    upper=st.booleans(),
)
def test_status_words_in_any_case(word, pad, upper):
    value = pad + (word.upper() if upper else word) + pad
    row = formats.read_row(formats.layout(["email", "Status"]), ["a@example.org", value])
    assert row.status == formats.STATUS_WORDS[word]


@given(st.text(max_size=40))
def test_unknown_status_text_is_refused_by_name(value):
    if value.strip().lower() in formats.STATUS_WORDS or not value.strip():
        return
    with pytest.raises(InputError, match="is not one of"):
        formats.parse_status(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    attributes=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5),
    name=st.text(max_size=20),
)
def test_listmonk_attributes_round_trip(attributes, name):
    lay = formats.layout(["uuid", "email", "name", "attributes", "status", "created_at", "updated_at"])
    assert lay.kind == "listmonk"
    row = formats.read_row(lay, ["u", "x@example.org", name, json.dumps(attributes), "blocklisted", "t", "t"])
    assert row.attributes == attributes and row.status == "unsubscribed"
    assert row.profile.get("name", "") == name.strip()


@settings(max_examples=200, deadline=None)
@given(first=cells, last=cells, kind=st.sampled_from(["", "UNSUB_TIME", "CLEAN_TIME"]), extra=cells)
def test_mailchimp_names_and_file_kinds(first, last, kind, extra):
    header = ["Email Address", "First Name", "Last Name", "MEMBER_RATING", "LEID", "Favourite colour"]
    header += [kind] if kind else []
    lay = formats.layout(header)
    record = ["x@example.org", first, last, "3", "1", extra] + (["2021-01-01"] if kind else [])
    row = formats.read_row(lay, record)
    assert row.status == {"": "confirmed", "UNSUB_TIME": "unsubscribed", "CLEAN_TIME": "bounced"}[kind]
    assert row.profile.get("name", "") == f"{first.strip()} {last.strip()}".strip()
    assert row.attributes == ({"Favourite colour": extra.strip()} if extra.strip() else {})


def test_a_line_the_csv_reader_cannot_read_is_rejected_and_the_rest_goes_in(site, tmp_path):
    path = tmp_path / "huge-cell.csv"
    huge = "x" * 200_000  # over the csv module's field limit
    path.write_text(
        f"email,status,note\na@example.org,confirmed,\nb@example.org,confirmed,{huge}\nc@example.org,confirmed,\n"
    )
    report = import_csv(site, path, "members", consent=BASIS)
    assert report.accepted == 2
    assert [(r.line, r.reason[:16]) for r in report.rejected] == [(3, "unreadable line ")]
