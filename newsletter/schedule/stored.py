"""Campaigns composed in the dashboard: revisions in the store, and the CampaignSource that reads them.

Each save writes a new revision (who, when, the whole campaign), never an update in place. A save
names the revision it was based on; when someone else saved in between, it is refused with who and
when (optimistic concurrency), in the same transaction that would have written it, so nothing is
half saved or silently overwritten, across any number of web instances on one PostgreSQL.

The live campaign is the latest revision that is not a draft, when it is `scheduled`: a draft edit
of a scheduled campaign leaves the scheduled version running until it is scheduled in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from newsletter.campaign_content import Content, Text, build_content
from newsletter.campaigns import Campaign, Event, Schedules
from newsletter.errors import ConfigError, Conflict, InputError, ScheduleError
from newsletter.schedule.config import parse_entry, parse_schedules
from newsletter.site import Site
from newsletter.store import Store
from newsletter.store.tables import composed_campaigns, composed_revisions

RevisionStatus = Literal["draft", "scheduled", "unscheduled"]
STATUSES = ("draft", "scheduled", "unscheduled")
SOURCE = "the store (composed campaigns)"


@dataclass(frozen=True)
class Revision:
    campaign: str
    revision: int
    status: str
    entry: dict[str, Any]  # the schedules.yaml entry
    texts: dict[str, dict[str, str]]  # {lang: {subject, preheader, body, source, source_hash}}
    saved_at: datetime
    saved_by: str

    @property
    def where(self) -> str:
        return f"store: campaign {self.campaign} revision {self.revision}"

    def content(self, default_source: str) -> Content:
        texts = [
            Text(
                language=lang,
                subject=str(t.get("subject", "")),
                preheader=str(t.get("preheader", "")),
                body=str(t.get("body", "")),
                source=str(t.get("source", "")),
                source_hash=str(t.get("source_hash", "")),
                where=f"{self.where}, {lang}",
            )
            for lang, t in self.texts.items()
        ]
        return build_content(self.campaign, texts, default_source)


def _revision(row: Any) -> Revision:
    return Revision(
        campaign=row.campaign,
        revision=int(row.revision),
        status=row.status,
        entry=dict(row.entry),
        texts={str(k): dict(v) for k, v in dict(row.texts).items()},
        saved_at=row.saved_at,
        saved_by=row.saved_by,
    )


def latest(store: Store, campaign_id: str) -> Revision | None:
    """The campaign's latest revision (draft or not), or None."""
    with store.read() as conn:
        row = conn.execute(
            select(composed_revisions)
            .where(composed_revisions.c.campaign == campaign_id)
            .order_by(composed_revisions.c.revision.desc())
            .limit(1)
        ).first()
    return _revision(row) if row else None


def history(store: Store, campaign_id: str) -> list[Revision]:
    with store.read() as conn:
        rows = conn.execute(
            select(composed_revisions)
            .where(composed_revisions.c.campaign == campaign_id)
            .order_by(composed_revisions.c.revision.desc())
        ).all()
    return [_revision(r) for r in rows]


def summaries(store: Store) -> list[dict[str, Any]]:
    """Per composed campaign: id, latest revision and its status, the live status, who saved last, when."""
    with store.read() as conn:
        rows = conn.execute(
            select(composed_revisions).order_by(composed_revisions.c.campaign, composed_revisions.c.revision)
        ).all()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        item = out.setdefault(row.campaign, {"id": row.campaign, "live": "draft"})
        item.update(
            revision=int(row.revision), status=row.status, saved_by=row.saved_by, saved_at=row.saved_at
        )
        item["template"] = row.entry.get("template", "")
        item["languages"] = sorted(row.texts)
        if row.status != "draft":
            item["live"] = row.status
            item["live_revision"] = int(row.revision)
    return list(out.values())


def live_revisions(store: Store) -> list[Revision]:
    """Per campaign, its latest revision that is not a draft, when that one is scheduled."""
    r = composed_revisions.c
    newest = (
        select(r.campaign, func.max(r.revision).label("revision"))
        .where(r.status != "draft")
        .group_by(r.campaign)
        .subquery()
    )
    with store.read() as conn:
        rows = conn.execute(
            select(composed_revisions)
            .join(newest, (r.campaign == newest.c.campaign) & (r.revision == newest.c.revision))
            .where(r.status == "scheduled")
            .order_by(r.campaign)
        ).all()
    return [_revision(row) for row in rows]


def to_campaign(site: Site, revision: Revision, events: dict[str, Event]) -> Campaign:
    """A revision as a Campaign, validated like a schedules.yaml entry; ScheduleError says what is wrong."""
    content = revision.content(site.default_language)
    entry = {**revision.entry, "id": revision.campaign, "content": revision.campaign}
    campaign, errors = parse_entry(site, entry, events, content, revision.where)
    if campaign is None:
        raise ScheduleError(errors)
    return campaign


class StoreSource:
    """The scheduled composed campaigns (a CampaignSource); their triggers may name the file's events."""

    name = SOURCE

    def __init__(self, site: Site, events: Mapping[str, Event] | None = None):
        self.site = site
        self._events = dict(events) if events is not None else None

    def load(self) -> Schedules:
        revisions = live_revisions(self.site.store)
        if not revisions:  # the common case: nothing composed, no second read of schedules.yaml
            return Schedules(events={}, campaigns={}, source=SOURCE)
        events = self._events if self._events is not None else parse_schedules(self.site).events
        campaigns = {r.campaign: to_campaign(self.site, r, events) for r in revisions}
        return Schedules(events={}, campaigns=campaigns, source=SOURCE)

    def stamp(self) -> object:
        with self.site.store.read() as conn:
            return tuple(
                conn.execute(
                    select(func.count(), func.coalesce(func.sum(composed_campaigns.c.revision), 0))
                ).one()
            )


def save(
    store: Store,
    *,
    campaign_id: str,
    based_on: int,
    status: RevisionStatus,
    entry: dict[str, Any],
    texts: dict[str, dict[str, str]],
    by: str,
    now: datetime,
) -> Revision:
    """Write revision `based_on + 1`, or raise Conflict when `based_on` is not the latest any more.

    `based_on` is 0 for a new campaign. The check and the write are one transaction; the conditional
    update (`WHERE revision = based_on`) makes the second of two concurrent saves find nothing to update.
    """
    if status not in STATUSES:
        raise InputError(f"status {status!r}: one of {', '.join(STATUSES)}")
    c = composed_campaigns.c
    try:
        with store.write() as conn:
            current = conn.execute(select(c.revision).where(c.id == campaign_id)).scalar()
            if (current or 0) != based_on:
                raise _conflict(conn, campaign_id, based_on, current)
            if current is None:
                conn.execute(
                    composed_campaigns.insert().values(
                        id=campaign_id, revision=1, created_at=now, created_by=by
                    )
                )
            else:
                done = conn.execute(
                    composed_campaigns.update()
                    .where(c.id == campaign_id, c.revision == based_on)
                    .values(revision=based_on + 1)
                )
                if done.rowcount != 1:
                    raise _conflict(conn, campaign_id, based_on, None)
            conn.execute(
                composed_revisions.insert().values(
                    campaign=campaign_id,
                    revision=based_on + 1,
                    status=status,
                    entry=entry,
                    texts=texts,
                    saved_at=now,
                    saved_by=by,
                )
            )
    except IntegrityError:
        # Two first saves of one new id at once: the primary key let only one in.
        raise Conflict(
            f"campaign {campaign_id!r} was created by someone else at the same time; nothing was saved: "
            "open it from the list and apply your changes again"
        ) from None
    return Revision(campaign_id, based_on + 1, status, entry, texts, now, by)


def _conflict(conn: Any, campaign_id: str, based_on: int, current: int | None) -> Conflict:
    r = composed_revisions.c
    last = conn.execute(
        select(r.revision, r.saved_by, r.saved_at)
        .where(r.campaign == campaign_id)
        .order_by(r.revision.desc())
        .limit(1)
    ).first()
    if based_on == 0 and last is not None:
        return Conflict(
            f"a campaign {campaign_id!r} already exists (saved by {last.saved_by}); nothing was saved: "
            "choose another id, or open that campaign to edit it"
        )
    if last is None:
        return Conflict(f"campaign {campaign_id!r} does not exist any more; nothing was saved")
    return Conflict(
        f"{last.saved_by} saved campaign {campaign_id!r} (revision {last.revision}) at "
        f"{last.saved_at:%Y-%m-%d %H:%M} UTC, after you opened revision {based_on}; your changes were "
        "not saved: open the campaign again to see theirs, then apply yours"
    )


def check_unique(site: Site, campaign_id: str, file_schedules: Schedules | None = None) -> None:
    """ConfigError when `campaign_id` is an id of schedules.yaml (events and campaigns share them)."""
    found = file_schedules or parse_schedules(site)
    if campaign_id in found.campaigns or campaign_id in found.events:
        kind = "campaign" if campaign_id in found.campaigns else "event"
        raise ConfigError(f"id {campaign_id!r} is already used by a {kind} of {found.source}; choose another")
