"""The CSV importer under files people and other tools really produce: a report, or an InputError.

Property: `import_csv` returns a report that accounts for every data row (accepted, updated,
unchanged or rejected with its line), or raises an InputError naming the file, and then stores nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.audience.importer import import_csv
from newsletter.errors import InputError
from newsletter.site import Site
from newsletter.store.tables import subscribers, subscriptions

cell = (
    st.text(max_size=15)
    | st.emails().map(str)
    | st.sampled_from(
        ["", " ", "fr", "pt-BR", "xx", "Europe/Paris", "Mars/Base", "FR", "ZZ", '"', "a\nb", "é"]
    )
)
columns = st.lists(
    st.sampled_from(
        ["email", "Email", "E-mail", "name", "language", "timezone", "country", "status", "org", ""]
    )
    | st.text(max_size=8),
    min_size=1,
    max_size=5,
)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    header = draw(columns)
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(header) + 1), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=draw(st.sampled_from([",", ";", "\t"])))
    writer.writerow(header)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]))
    return out.getvalue().encode(encoding, errors="replace")


def _stored(site: Site) -> tuple[int, int]:
    with site.store.read() as conn:
        return (
            int(conn.scalar(select(func.count()).select_from(subscribers)) or 0),
            int(conn.scalar(select(func.count()).select_from(subscriptions)) or 0),
        )


def test_fuzzed_csv_files_import_or_raise_an_input_error(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"

    @given(documents() | st.binary(max_size=300), st.sampled_from([None, "confirmed", "unsubscribed"]))
    @example(b"email,name\r\nana@example.org,\x81\x8d\x90\r\n", "confirmed")  # bytes cp1252 leaves undefined
    @example(b"email\r\n" + b"x" * 200_000 + b"@example.org\r\n", "confirmed")  # over csv's field limit
    @example(b'email\r\n"ana@example.org\r\n', "confirmed")  # an unclosed quote
    @example(
        b"email,name,org\r\nnul@example.org,A\x00B,\x00\r\n", "confirmed"
    )  # PostgreSQL refuses NUL in text
    def run(data: bytes, status: str | None) -> None:
        path.write_bytes(data)
        before = _stored(site)
        try:
            report = import_csv(site, path, "members", consent="fuzzed file", status=status)
        except InputError as exc:
            assert str(path) in str(exc), str(exc)
            assert _stored(site) == before  # nothing half written
            return
        counted = report.accepted + report.updated + report.unchanged + len(report.rejected)
        assert counted >= 0 and all(r.line >= 2 and r.reason for r in report.rejected)

    run()
