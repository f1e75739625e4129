"""The signed SendGrid Event Webhook: verify, deduplicate, store, and act on bounces and complaints.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 (base64 DER signature in
`X-Twilio-Email-Event-Webhook-Signature`, the timestamp in `...-Timestamp`). A post is refused when the
signature does not verify under the configured public key, when its timestamp is outside the replay
window, or when its body is too large. Events are matched to the send ledger by the `custom_args` the
send stage sets (SendGrid copies them into each event) and deduplicated by `sg_event_id`, since
SendGrid retries a batch for 24 hours.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import select

from newsletter.audience import status
from newsletter.audience.subscribers import normalize_email
from newsletter.errors import InputError, Refused
from newsletter.ids import MAX_ID, parse_id
from newsletter.store import Store
from newsletter.store.tables import EVENT_KINDS, subscribers
from newsletter.track import classify
from newsletter.track.events import (
    SG_EVENT_ID,
    db_json,
    db_time,
    insert_new_events,
    known_event_ids,
)
from newsletter.track.ip import anonymize
from newsletter.track.sends import ledger_rows

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Every stored event kind comes from SendGrid except our own sign-on conversions.
KINDS = frozenset(EVENT_KINDS) - {"conversion"}
# custom_args names the send stage may use, first match wins.
SEND_KEYS = ("send_id", "send", "nl_send")
CAMPAIGN_KEYS = ("campaign", "nl_campaign")
LANGUAGE_KEYS = ("language", "lang", "nl_language")
OCCURRENCE_KEYS = ("occurrence_id", "occurrence", "nl_occurrence")
KEPT = ("reason", "type", "status", "url", "bounce_classification", "attempt", "response", "asm_group_id")
DROPPED_AS = {
    "Bounced Address": "bounced",
    "Spam Reporting Address": "complained",
    "Unsubscribed Address": "unsubscribed",
}
ACTIONS = frozenset(
    {"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"}
)


@lru_cache(maxsize=8)
def _public_key(key_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = load_der_public_key(base64.b64decode(key_b64.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise Refused(503, f"sendgrid_webhook_public_key is not a base64 DER public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Refused(503, "sendgrid_webhook_public_key is not an ECDSA key")
    return key


def verify(
    public_key_b64: str, signature_b64: str, timestamp: str, body: bytes, *, now: float, max_age: float
) -> None:
    """Raise Refused unless `body` is signed by the key and `timestamp` is within `max_age` of `now`."""
    if not public_key_b64:
        raise Refused(503, "the SendGrid webhook is not configured (sendgrid_webhook_public_key is empty)")
    if not signature_b64 or not timestamp:
        raise Refused(403, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    # isdigit() alone takes "²" and other non-ASCII digits, which int() and the signature bytes refuse.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused(403, f"{TIMESTAMP_HEADER}: not epoch seconds: {timestamp[:40]!r}")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        raise Refused(403, f"{SIGNATURE_HEADER}: not base64") from None
    try:
        _public_key(public_key_b64).verify(
            signature, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise Refused(403, "signature does not verify") from None
    # Checked after the signature, so the timestamp itself is known to come from SendGrid.
    if abs(now - int(timestamp)) > max_age:
        raise Refused(403, f"timestamp {timestamp} is outside the {max_age:g} s replay window")


def parse(body: bytes) -> list[Any]:
    """The events of a post (a JSON array; each item is checked by `ingest`); Refused(400) otherwise."""
    try:
        data = json.loads(body, parse_constant=_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and NaN or Infinity
        raise Refused(400, f"body is not JSON: {exc}") from None
    except RecursionError:
        raise Refused(400, "body is not JSON SendGrid sends: nested too deep") from None
    if not isinstance(data, list):
        raise Refused(400, "body is not a JSON array of events")
    return data


@dataclass
class Ingested:
    stored: int = 0
    duplicates: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)


def _constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON and no timestamp.
    raise ValueError(f"{name} is not a JSON value")


# Epoch seconds a stored event may carry: from 1970 to the end of 9999 (what datetime holds).
TIME_RANGE = (0.0, 253402300799.0)


def problem(event: Any) -> str | None:
    """Why `event` cannot be stored, or None when it can."""
    if not isinstance(event, dict):
        return f"not an object but {type(event).__name__}"
    kind = event.get("event")
    if not isinstance(kind, str) or kind not in KINDS:
        return f"unknown event {str(kind)[:40]!r}"
    stamp = event.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return f"{kind}: timestamp missing or not a number: {str(stamp)[:40]!r}"
    if not TIME_RANGE[0] <= stamp <= TIME_RANGE[1]:  # also false for NaN
        return f"{kind}: timestamp {str(stamp)[:40]} is not epoch seconds between 1970 and 9999"
    return None


def _first(event: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = event.get(key)
        if value not in (None, ""):
            return value
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, str):
        return parse_id(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
        return value
    return None


def ingest(
    store: Store, items: Iterable[Any], *, ip_privacy: str, ip_key: bytes, soft_bounce_limit: int
) -> Ingested:
    """Store the new events of one post and apply their status changes, in one transaction."""
    result = Ingested()
    batch: dict[str, dict[str, Any]] = {}
    loose: list[dict[str, Any]] = []
    for n, event in enumerate(items):
        if (why := problem(event)) is not None:
            result.errors.append(f"event #{n}: {why}; skipped")
            continue
        sg_id = event.get("sg_event_id")
        if isinstance(sg_id, str) and sg_id:
            if sg_id[:100] in batch:
                result.duplicates += 1
            batch[sg_id[:100]] = event
        else:
            loose.append(event)
    with store.write() as conn:
        # Events already stored are counted and dropped first, so a replayed batch costs one query.
        known = known_event_ids(conn, list(batch))
        result.duplicates += len(known)
        fresh = [*(e for sg_id, e in batch.items() if sg_id not in known), *loose]
        dialect = conn.dialect.name
        # Then the ledger rows of the new events only, and the insert, which skips the events stored
        # meanwhile and says which ones it stored.
        ledger = ledger_rows(conn, {s for e in fresh if (s := _int(_first(e, SEND_KEYS))) is not None})
        rows = [_row(e, ledger, ip_privacy, ip_key, dialect) for e in fresh]
        stored = insert_new_events(conn, rows, seen=known)
        for event, values in zip(fresh, rows, strict=True):
            if values[SG_EVENT_ID] is not None and values[SG_EVENT_ID] not in stored:
                result.duplicates += 1
                continue
            result.stored += 1
            if event["event"] in ACTIONS and _act(conn, event, values[4], soft_bounce_limit):
                result.suppressed += 1
    return result


def _row(
    event: dict[str, Any], ledger: dict[int, Any], ip_privacy: str, ip_key: bytes, dialect: str
) -> tuple[Any, ...]:
    """One events row, in `events.COLUMNS` order."""
    kind = event["event"]
    send = ledger.get(_int(_first(event, SEND_KEYS)) or 0)
    user_agent = str(event.get("useragent") or "")
    ip = str(event.get("ip") or "")
    if kind == "open":
        machine = classify.machine_open(user_agent, ip, bool(event.get("sg_machine_open")))
    elif kind == "click":
        machine = classify.scanner_agent(user_agent)
    else:
        machine = False
    sg_id = event.get("sg_event_id")
    kept = {k: event[k] for k in KEPT if k in event}
    return (
        kind,
        "sendgrid",
        send.occurrence_id if send else _int(_first(event, OCCURRENCE_KEYS)),
        send.id if send else None,
        send.subscriber_id if send else None,
        None,
        send.campaign if send else _str(_first(event, CAMPAIGN_KEYS), 100),
        send.language if send else _str(_first(event, LANGUAGE_KEYS), 16),
        None,
        machine,
        user_agent[:500],
        anonymize(ip, ip_privacy, ip_key),
        sg_id[:100] if isinstance(sg_id, str) and sg_id else None,
        db_json(kept) if kept else None,
        db_time(datetime.fromtimestamp(float(event["timestamp"]), UTC), dialect),
    )


def _str(value: Any, size: int) -> str | None:
    return None if value is None else str(value)[:size]


def _act(conn: Any, event: dict[str, Any], subscriber_id: int | None, soft_bounce_limit: int) -> bool:
    """Apply what the event means for the subscription; True when the address got suppressed."""
    kind = event["event"]
    if kind == "bounce":
        new_status = "soft" if event.get("type") == "blocked" else "bounced"
    elif kind == "dropped":
        new_status = DROPPED_AS.get(str(event.get("reason", "")), "")
    elif kind == "spamreport":
        new_status = "complained"
    elif kind in ("unsubscribe", "group_unsubscribe"):
        new_status = "unsubscribed"
    elif kind == "group_resubscribe":
        new_status = "resubscribe"
    else:
        return False
    email = _address(event)
    if subscriber_id is None and email:
        subscriber_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
    detail = f"sendgrid {kind}: {event.get('reason') or event.get('type') or ''}".strip()[:500]
    now = datetime.fromtimestamp(float(event["timestamp"]), UTC)
    if new_status == "resubscribe":
        if subscriber_id is not None:
            status.resubscribe(conn, subscriber_id, source="webhook", detail=detail, now=now)
        return False
    if new_status == "soft":
        if subscriber_id is None:
            return False
        return status.soft_bounce(
            conn, subscriber_id, limit=soft_bounce_limit, source="webhook", detail=detail, now=now
        )
    if not new_status or (subscriber_id is None and not email):
        return False
    status.leave(conn, subscriber_id, new_status, source="webhook", email=email, detail=detail, now=now)
    return True


def _address(event: dict[str, Any]) -> str | None:
    try:
        return normalize_email(str(event.get("email") or ""))
    except InputError:
        return None
