"""The SendGrid webhook under odd input: every post is answered 200 or a 4xx with a reason, never a 500.

The signed posts are signed with a key of our own (the site is configured with its public half), so
they reach `parse` and `ingest`; the bad events of a batch are listed and skipped, the rest stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.store.tables import events
from newsletter.track.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.test_track_webhook import PUBLIC, _post, _signed, _site

KINDS = ["open", "click", "delivered", "bounce", "dropped", "spamreport", "unsubscribe", "group_resubscribe"]
# JSON values as SendGrid could never send them, and a few it does.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
events_ = st.fixed_dictionaries(
    {"event": st.sampled_from(KINDS) | values, "timestamp": values | st.integers(0, 2_000_000_000)},
    optional={
        "sg_event_id": values,
        "send_id": values,
        "occurrence": values,
        "campaign": values,
        "language": values,
        "email": values | st.emails(),
        "ip": values | st.ip_addresses().map(str),
        "useragent": values,
        "type": values,
        "reason": values,
        "url": values,
        "sg_machine_open": values,
    },
)
batches = st.lists(events_ | values, max_size=6)


def _stored(site: Any) -> int:
    with site.store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


def test_malformed_events_are_skipped_with_a_reason_and_the_rest_of_the_batch_is_stored(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC)
    server = live_server(site)
    good = {"event": "delivered", "email": "a@example.org", "timestamp": 1_700_000_000, "sg_event_id": "g1"}
    batch: list[Any] = [
        ["delivered", 1],
        42,
        {"event": ["open"], "timestamp": 1},
        {"event": "open", "timestamp": 1e20},
        {"event": "open", "timestamp": -1e12},
        {"event": "open", "timestamp": True},
        {"event": "open", "timestamp": 1, "send_id": 10**30, "occurrence": "²", "sg_event_id": "g2"},
        good,
    ]
    body = json.dumps(batch).encode()
    answer = _post(server, body, _signed(body))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["stored"] == 2, result  # the good one, and the open whose ids match nothing
    assert [e.split(":")[0] for e in result["errors"]] == [f"event #{n}" for n in range(6)]
    assert "not an object but list" in result["errors"][0] and "not an object but int" in result["errors"][1]
    assert "1e+20 is not epoch seconds" in result["errors"][3]
    with site.store.read() as conn:
        rows = conn.execute(select(events.c.kind, events.c.send_id, events.c.occurrence_id)).all()
    assert sorted(rows) == [("delivered", None, None), ("open", None, None)]
    site.close()


def test_non_json_numbers_deep_nesting_and_odd_timestamp_headers_are_4xx(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC)
    server = live_server(site)
    for body in (
        b'[{"event": "open", "timestamp": NaN}]',
        b'[{"event": "open", "timestamp": Infinity}]',
        b'[{"event": "open", "timestamp": -Infinity}]',
        b"[" * 1000 + b"]" * 1000,
        b'{"event": "open"}',
        b"\xff\xfe",
    ):
        answer = _post(server, body, _signed(body))
        assert answer.status_code == 400, (body[:40], answer.text)
        assert "error" in answer.json()
    body = b"[]"
    for stamp in ("²", "1²", "١٢٣", "9" * 5000, "-1", "1.5"):
        headers = {SIGNATURE_HEADER: "AAAA", TIMESTAMP_HEADER: stamp}
        answer = httpx.post(
            f"{server.url}/webhooks/sendgrid",
            content=body,
            headers=[(k.encode(), v.encode("utf-8")) for k, v in headers.items()],
        )
        assert answer.status_code == 403, (stamp, answer.text)
    assert _stored(site) == 0
    site.close()


def test_fuzzed_signed_batches_are_answered_200_or_4xx(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC)
    server = live_server(site)

    @given(batches)
    def post(batch: list[Any]) -> None:
        body = json.dumps(batch).encode()
        answer = _post(server, body, _signed(body))
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["stored"] + result["duplicates"] + len(result["errors"]) >= len(batch)

    post()
    site.close()


def test_fuzzed_bodies_and_headers_are_answered_4xx(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC)
    server = live_server(site)
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")).map(
        str.strip
    )

    @given(st.binary(max_size=200) | values.map(lambda v: json.dumps(v).encode()), header_text, header_text)
    def post(body: bytes, signature: str, stamp: str) -> None:
        headers = [(SIGNATURE_HEADER.encode(), signature.encode("latin-1"))]
        headers.append((TIMESTAMP_HEADER.encode(), stamp.encode("latin-1")))
        answer = httpx.post(f"{server.url}/webhooks/sendgrid", content=body, headers=headers)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]

    post()
    site.close()
