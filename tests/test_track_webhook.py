"""The signed SendGrid Event Webhook over real HTTP: SendGrid's own vector, forgeries, replays, ingest."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from newsletter.audience.lists import sync_lists
from newsletter.audience.subscribers import email_hash
from newsletter.site import Site
from newsletter.store.tables import consents, events, subscriptions, suppressions
from newsletter.track.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.support.track import seed_message

# SendGrid's own test vector, kept beside the repository (../shared/sendgrid/), or where the variable says.
VECTOR_FILE = Path(
    os.environ.get(
        "NEWSLETTER_TEST_SENDGRID_VECTOR",
        Path(__file__).resolve().parents[2] / "shared" / "sendgrid" / "eventwebhook_test_vector.json",
    )
)
VECTOR = json.loads(VECTOR_FILE.read_text())
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def _site(site_dir: Path, site_env: dict[str, str], **env: str) -> Site:
    site = Site.load(site_dir, environ={**site_env, **{f"NEWSLETTER_{k.upper()}": v for k, v in env.items()}})
    sync_lists(site)
    return site


def _signed(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = KEY.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: ts}


def _vector_headers(signature: str | None = None) -> dict[str, str]:
    return {
        SIGNATURE_HEADER: signature or VECTOR["header_X-Twilio-Email-Event-Webhook-Signature"],
        TIMESTAMP_HEADER: VECTOR["header_X-Twilio-Email-Event-Webhook-Timestamp"],
    }


def _count(site: Site, table: Any = events) -> int:
    with site.store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _post(server: Any, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/webhooks/sendgrid", content=body, headers=headers)


def test_sendgrids_own_vector_is_accepted_with_the_window_widened(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(
        site_dir,
        site_env,
        sendgrid_webhook_public_key=VECTOR["public_key_b64_spki_der"],
        webhook_max_age="999999999",
    )
    server = live_server(site)
    body = VECTOR["raw_body_exact"].encode()
    answer = _post(server, body, _vector_headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 1
    with site.store.read() as conn:
        (row,) = conn.execute(select(events)).all()
        assert (row.kind, row.source, row.sg_event_id) == (
            "dropped",
            "sendgrid",
            json.loads(body)[0]["sg_event_id"],
        )
        # "Bounced Address": the address is suppressed even though it is nobody on our lists.
        assert (
            conn.scalar(
                select(suppressions.c.reason).where(
                    suppressions.c.email_hash == email_hash("hello@world.com")
                )
            )
            == "bounced"
        )
    replay = _post(server, body, _vector_headers())
    assert replay.status_code == 200 and replay.json() == {"stored": 0, "duplicates": 1, "errors": []}
    assert _count(site) == 1
    site.close()


@pytest.mark.parametrize(
    "case",
    ["stale", "wrong_key", "bad_signature", "body_changed", "no_headers", "crlf_dropped", "not_configured"],
)
def test_refused_posts_store_nothing(
    site_dir: Path, site_env: dict[str, str], live_server: Any, case: str
) -> None:
    key = {"wrong_key": VECTOR["bad_public_key"], "not_configured": ""}.get(
        case, VECTOR["public_key_b64_spki_der"]
    )
    age = "600" if case == "stale" else "999999999"
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=key, webhook_max_age=age)
    server = live_server(site)
    body = VECTOR["raw_body_exact"].encode()
    headers = _vector_headers(VECTOR["bad_signature"] if case == "bad_signature" else None)
    if case == "body_changed":
        body = body.replace(b"dropped", b"deliver")
    elif case == "crlf_dropped":
        body = body.rstrip(b"\r\n")
    elif case == "no_headers":
        headers = {}
    answer = _post(server, body, headers)
    assert answer.status_code in (403, 503), answer.text
    assert _count(site) == 0 and _count(site, suppressions) == 0
    site.close()


def test_stale_and_future_timestamps_and_oversized_bodies_are_refused(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC, webhook_max_bytes="5000")
    server = live_server(site)
    body = json.dumps(
        [{"event": "delivered", "email": "a@example.org", "timestamp": 1, "sg_event_id": "x1"}]
    ).encode()
    assert _post(server, body, _signed(body, int(time.time()) - 700)).status_code == 403
    assert _post(server, body, _signed(body, int(time.time()) + 700)).status_code == 403
    big = json.dumps([{"event": "delivered", "pad": "x" * 6000, "timestamp": 1}]).encode()
    assert _post(server, big, _signed(big)).status_code == 413
    # Signed by us but under a different key than the configured one.
    assert _post(server, body, _vector_headers()).status_code == 403
    assert _count(site) == 0
    assert _post(server, body, _signed(body)).status_code == 200
    assert _count(site) == 1
    site.close()


def _event(kind: str, send: dict[str, Any], n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": "ana@example.org",
        "event": kind,
        "timestamp": int(time.time()),
        "sg_event_id": f"{kind}-{send['send_id']}-{n}",
        "send_id": str(send["send_id"]),
        "occurrence": str(send["occurrence_id"]),
        "campaign": "declaration-call",
        "language": "fr",
        **extra,
    }


def test_events_are_matched_to_the_ledger_and_act_on_the_subscription(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC, soft_bounce_limit="3")
    send = seed_message(site.store)
    server = live_server(site)
    batch = [
        _event("processed", send, 1),
        _event("delivered", send, 1),
        _event("open", send, 1, sg_machine_open=True, useragent="Mozilla/5.0", ip="17.1.2.3"),
        _event("open", send, 2, useragent="Mozilla/5.0 (Windows NT 10.0) Firefox/120", ip="203.0.113.9"),
        _event("click", send, 1, url="https://hub.example.org/sign-on", useragent="Mozilla/5.0 Firefox/120"),
        _event("deferred", send, 1, response="421 try later"),
        {"event": "nonsense", "timestamp": 1},
    ]
    body = json.dumps(batch).encode()
    answer = _post(server, body, _signed(body))
    assert answer.status_code == 200
    assert answer.json()["stored"] == 6 and len(answer.json()["errors"]) == 1
    with site.store.read() as conn:
        rows = conn.execute(select(events).order_by(events.c.id)).all()
    assert {r.send_id for r in rows} == {send["send_id"]}
    assert {(r.campaign, r.language, r.occurrence_id) for r in rows} == {
        ("declaration-call", "fr", send["occurrence_id"])
    }
    assert [(r.kind, r.machine) for r in rows if r.kind == "open"] == [("open", True), ("open", False)]
    assert [r.ip for r in rows if r.kind == "open"] == ["17.1.2.0/24", "203.0.113.0/24"]
    assert [r.data for r in rows if r.kind in ("click", "deferred")] == [
        {"url": "https://hub.example.org/sign-on"},
        {"response": "421 try later"},
    ]
    assert all(r.at.tzinfo is not None and abs(time.time() - r.at.timestamp()) < 120 for r in rows)
    # Two soft bounces: still subscribed; the third crosses the threshold.
    for n in (1, 2, 3):
        soft = json.dumps([_event("bounce", send, n, type="blocked", reason="mailbox full")]).encode()
        assert _post(server, soft, _signed(soft)).status_code == 200
        with site.store.read() as conn:
            status = conn.scalar(
                select(subscriptions.c.status).where(subscriptions.c.subscriber_id == send["subscriber_id"])
            )
        assert status == ("bounced" if n == 3 else "confirmed")
    assert _count(site, suppressions) == 1
    site.close()


@pytest.mark.parametrize(
    "kind,extra,status,reason",
    [
        ("bounce", {"type": "bounce", "reason": "550 5.1.1 no such user"}, "bounced", "bounced"),
        ("spamreport", {}, "complained", "complained"),
        ("unsubscribe", {}, "unsubscribed", "unsubscribed"),
        ("group_unsubscribe", {"asm_group_id": 7}, "unsubscribed", "unsubscribed"),
    ],
)
def test_hard_bounces_complaints_and_unsubscribes_suppress_at_once(
    site_dir: Path,
    site_env: dict[str, str],
    live_server: Any,
    kind: str,
    extra: Any,
    status: str,
    reason: str,
) -> None:
    site = _site(site_dir, site_env, sendgrid_webhook_public_key=PUBLIC)
    send = seed_message(site.store)
    server = live_server(site)
    body = json.dumps([_event(kind, send, 1, **extra)]).encode()
    assert _post(server, body, _signed(body)).status_code == 200
    with site.store.read() as conn:
        assert conn.scalar(select(subscriptions.c.status)) == status
        assert conn.scalar(select(suppressions.c.reason)) == reason
        assert conn.scalar(select(consents.c.source).where(consents.c.action == status)) == "webhook"
    if kind == "group_unsubscribe":
        back = json.dumps([_event("group_resubscribe", send, 2)]).encode()
        assert _post(server, back, _signed(back)).status_code == 200
        with site.store.read() as conn:
            assert conn.scalar(select(subscriptions.c.status)) == "confirmed"
            assert _count(site, suppressions) == 0
    site.close()
