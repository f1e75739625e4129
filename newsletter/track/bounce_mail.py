"""Act on one message from the bounce mailbox: find its send, store its bounces, change the subscription.

A message is *recognised* when it is a DSN or an ARF report about a send of this site: named by a
signed VERP address or recipient token, or by a returned Message-ID whose send was to the address that
failed. Only recognised mail is acted on (and moved by the caller); anything else is left as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from newsletter.send.bounce_policy import Applied, Bounce, Kind, Policy, apply
from newsletter.store import Store
from newsletter.store.tables import sends
from newsletter.tokens import Signer
from newsletter.track.dsn import Failure, Report, parse

SOURCE = "mailbox"


@dataclass
class Outcome:
    recognised: bool
    report: Report
    why: str = ""  # when not recognised
    applied: Applied = field(default_factory=Applied)


def handle(
    store: Store, raw: bytes, *, signer: Signer, bounce_address: str, policy: Policy, now: datetime
) -> Outcome:
    """Parse `raw`, and if it is a report about one of our sends, apply it (one transaction)."""
    return handle_many(store, [raw], signer=signer, bounce_address=bounce_address, policy=policy, now=now)[0]


def handle_many(
    store: Store, raws: list[bytes], *, signer: Signer, bounce_address: str, policy: Policy, now: datetime
) -> list[Outcome]:
    """`handle` for a chunk of messages in one transaction: one commit a chunk, not one a message.

    Safe to repeat: a chunk applied but not moved (a crash in between) is applied again as duplicates.
    """
    reports = [parse(raw, signer, bounce_address) for raw in raws]
    outcomes: list[Outcome] = []
    with store.write() as conn:
        for raw, report in zip(raws, reports, strict=True):
            outcomes.append(_apply_one(conn, raw, report, policy, now))
    return outcomes


def _apply_one(conn: Any, raw: bytes, report: Report, policy: Policy, now: datetime) -> Outcome:
    if report.kind not in ("dsn", "complaint"):
        return Outcome(False, report, report.why or report.kind)
    send = _send_of(conn, report)
    if send is None:
        return Outcome(False, report, "names no send of this site")
    found = bounces_of(report, send.id, send.email, _key(raw, report, send.id), now)
    if not found:
        return Outcome(False, report, "no failed recipient")
    return Outcome(True, report, applied=apply(conn, found, policy))


def _send_of(conn: Any, report: Report) -> Any:
    columns = (sends.c.id, sends.c.email)
    if report.send_id is not None:
        return conn.execute(select(*columns).where(sends.c.id == report.send_id)).first()
    if report.unsigned_send_id is None:
        return None
    row = conn.execute(select(*columns).where(sends.c.id == report.unsigned_send_id)).first()
    named = {f.email.lower() for f in report.failures} | {report.complainant.lower()}
    # Unsigned: only when the report names the address that send went to.
    return row if row is not None and row.email.lower() in named else None


def bounces_of(report: Report, send_id: int, email: str, key: str, now: datetime) -> list[Bounce]:
    """The one bounce (or complaint) the report means for the send's address."""
    if report.kind == "complaint":
        detail = f"feedback report: {report.complaint_type or 'abuse'}"
        return [Bounce("complaint", email, now, send_id, "", detail, SOURCE, key)]
    ours = [f for f in report.failures if f.email.lower() == email.lower()] or report.failures
    if not ours:
        return []
    worst = min(ours, key=_severity)
    return [Bounce(_kind(worst), email, now, send_id, worst.status, worst.diagnostic, SOURCE, key)]


def _severity(f: Failure) -> int:
    return 0 if f.permanent else 1 if f.action == "failed" else 2


def _kind(f: Failure) -> Kind:
    if f.permanent:
        return "hard"
    return "soft" if f.action == "failed" else "delayed"


def _key(raw: bytes, report: Report, send_id: int) -> str:
    """The same report, pulled twice or piped and pulled, is stored once."""
    basis = report.message_id.encode() if report.message_id else hashlib.sha256(raw).digest()
    return "mbox:" + hashlib.sha256(basis + b"/" + str(send_id).encode()).hexdigest()[:40]


# ---------------------------------------------------------------- for a site


def site_handler(site: Any, now: datetime, outcomes: list[Outcome] | None = None) -> Any:
    """A mailbox handler for `site`: for a chunk of messages, True for each it recognised and applied."""
    s = site.settings
    signer = Signer(s["secret_key"])
    policy = Policy.of(s)

    def handler(raws: list[bytes]) -> list[bool]:
        done = handle_many(
            site.store, raws, signer=signer, bounce_address=s["bounce_address"], policy=policy, now=now
        )
        if outcomes is not None:
            outcomes.extend(done)
        return [o.recognised for o in done]

    return handler


def pull_site(site: Any, now: datetime, outcomes: list[Outcome] | None = None) -> Any:
    """Read the site's bounce mailbox (`bounce_mailbox`) once; a mailbox.Pulled."""
    from newsletter.errors import ConfigError
    from newsletter.track.mailbox import Mailbox, pull, tls_context

    s = site.settings
    if not s["bounce_mailbox"]:
        raise ConfigError("bounce_mailbox is empty: set it to imaps://user@host/INBOX (see README, Bounces)")
    return pull(
        Mailbox.parse(s["bounce_mailbox"]),
        s["bounce_mailbox_password"],
        site_handler(site, now, outcomes),
        processed_folder=s["bounce_processed_folder"],
        context=tls_context(s["bounce_ca_file"]),
        timeout=float(s["send_timeout"]),
    )


def pull_every(site: Any, stop: Any, minutes: float, clock: Any = None) -> None:
    """`newsletter run`'s bounce reader: pull the mailbox every `minutes` until `stop` (an Event) is set.

    A failed pull (server down, password changed) is logged and tried again at the next interval.
    """
    import logging

    from newsletter.errors import NewsletterError
    from newsletter.store import now_utc

    log = logging.getLogger("newsletter.bounces")
    clock = clock or now_utc
    while not stop.is_set():
        try:
            pulled = pull_site(site, clock())
            if pulled.seen:
                log.info("bounce mailbox: %s recognised, %s left", pulled.recognised, pulled.left)
            for error in pulled.errors:
                log.warning("bounce mailbox: %s", error)
        except NewsletterError as exc:
            log.warning("bounce mailbox not read: %s", exc)
        except Exception:  # the reader must not take `run` down; the next interval retries
            log.exception("bounce mailbox pull failed")
        stop.wait(minutes * 60)
