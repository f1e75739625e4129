"""The plan: every upcoming send, as a pure function of the schedules, the audience and the clock.

`plan()` does no I/O: audience sizes (per subscriber language), their timezones and new-item counts
come in as mappings, `now` as an argument. `sync.plan_for_site()` gathers those from the store, calls
`plan()`, and lays the occurrences' stored states (paused, missed, sent...) over it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from newsletter.audience.segments import describe, for_session
from newsletter.campaigns import Campaign, Event, Schedules, Session
from newsletter.schedule.moves import Moved
from newsletter.schedule.times import parse_every, recipient_time, zone
from newsletter.site import pick_language

Fallback = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class PlannedSend:
    """One occurrence of a campaign: what goes out, to how many, when and why."""

    key: str  # unique and stable: campaign/event[/session] or campaign/local-date; moves keep it
    campaign: str
    template: str
    due: datetime  # UTC: when the scheduler fires it (the first subscriber's time)
    timezone: str  # the event's, session's or recurrence's zone, for showing local time
    trigger: str  # why, e.g. "1d before each session of webinar-april"
    event: str | None = None
    session: str | None = None
    languages: tuple[str, ...] = ()
    audience: int = 0
    audience_by_language: dict[str, int] = field(default_factory=dict)
    reference: datetime | None = None  # the trigger's instant (differs from due with local_time)
    last_at: datetime | None = None  # the last subscriber's time (local_time, quiet hours)
    not_after: datetime | None = None  # reminders: the start of what they announce
    late_by: timedelta = timedelta(hours=6)
    only_if_new_items: bool = False
    new_items: int | None = None
    status: str = "planned"  # or the stored occurrence's status: scheduled paused sent missed ...
    reason: str = ""
    occurrence_id: int | None = None
    segment: str = ""  # the audience's registration and behavioural fields in words (audience.segments)

    @property
    def local(self) -> datetime:
        return self.due.astimezone(zone(self.timezone))

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "key": self.key,
            "occurrence_id": self.occurrence_id,
            "due_utc": iso(self.due),
            "due_local": iso(self.local),
            "timezone": self.timezone,
            "reference_utc": iso(self.reference),  # the trigger's instant
            "last_at_utc": iso(self.last_at),
            "campaign": self.campaign,
            "template": self.template,
            "event": self.event,
            "session": self.session,
            "languages": list(self.languages),
            "audience": self.audience,
            "audience_by_language": self.audience_by_language,
            "trigger": self.trigger,
            "not_after_utc": iso(self.not_after),
            "late_by_seconds": int(self.late_by.total_seconds()),
            "only_if_new_items": self.only_if_new_items,
            "new_items": self.new_items,
            "status": self.status,
            "reason": self.reason,
            "segment": self.segment,
        }


def occurrence_key(campaign: str, event: str | None = None, session: str | None = None) -> str:
    return "/".join(part for part in (campaign, event, session) if part)


def expand(
    schedules: Schedules,
    start: datetime,
    end: datetime,
    moved: Mapping[tuple[str, str], Moved] | None = None,
    now: datetime | None = None,
) -> list[PlannedSend]:
    """Every occurrence whose trigger instant lies in [start, end), before audiences are counted.

    `moved`: events and sessions that moved after reminders went out, for `on_change` campaigns;
    a notice is due when the move was noticed (else `now`).
    """
    out: list[PlannedSend] = []
    for campaign in schedules.campaigns.values():
        trigger = campaign.trigger
        base = {
            "campaign": campaign.id,
            "template": campaign.template,
            "trigger": trigger.describe(),
            "late_by": campaign.late_by,
            "only_if_new_items": trigger.only_if_new_items,
        }
        if trigger.kind not in ("before", "after"):
            base["segment"] = describe(campaign.audience)
        if trigger.kind in ("before", "after"):
            event = schedules.events.get(trigger.event or "")
            if event is None or event.cancelled:
                continue
            targets: Sequence[Event | Session] = event.sessions if trigger.per_session else (event,)
            offset = trigger.offset or timedelta(0)
            for target in targets:
                instant = target.start - offset if trigger.kind == "before" else target.start + offset
                instant = instant.astimezone(UTC)
                if not start <= instant < end:
                    continue
                session = target.id if isinstance(target, Session) else None
                out.append(
                    PlannedSend(
                        **base,  # type: ignore[arg-type]
                        segment=describe(for_session(campaign.audience, event.id, session)),
                        key=occurrence_key(campaign.id, event.id, session),
                        due=instant,
                        reference=instant,
                        timezone=target.timezone,
                        event=event.id,
                        session=session,
                        languages=(target.language,) if isinstance(target, Session) else campaign.languages,
                        not_after=target.start.astimezone(UTC) if trigger.kind == "before" else None,
                    )
                )
        elif trigger.kind == "on_change":
            out.extend(_notices(campaign, schedules, base, moved or {}, now or start, start, end))
        elif trigger.kind == "every":
            every = parse_every(trigger.every or "")
            for day, instant in every.instances(start, end):
                out.append(
                    PlannedSend(
                        **base,  # type: ignore[arg-type]
                        key=occurrence_key(campaign.id, day.isoformat()),
                        languages=campaign.languages,
                        due=instant,
                        reference=instant,
                        timezone=every.timezone,
                    )
                )
        elif trigger.at is not None and start <= trigger.at < end:
            instant = trigger.at.astimezone(UTC)
            out.append(
                PlannedSend(
                    **base,  # type: ignore[arg-type]
                    key=occurrence_key(campaign.id),
                    languages=campaign.languages,
                    due=instant,
                    reference=instant,
                    timezone=trigger.timezone,
                )
            )
    return out


def _notices(
    campaign: Campaign,
    schedules: Schedules,
    base: dict[str, Any],
    moved: Mapping[tuple[str, str], Moved],
    now: datetime,
    start: datetime,
    end: datetime,
) -> list[PlannedSend]:
    """The change notices of an `on_change` campaign: one per move of each target, keyed by its new time."""
    event = schedules.events.get(campaign.trigger.event or "")
    if event is None or event.cancelled:
        return []
    out = []
    targets: Sequence[Event | Session] = event.sessions if campaign.trigger.per_session else (event,)
    for target in targets:
        session = target.id if isinstance(target, Session) else None
        change = moved.get((event.id, session or ""))
        if change is None or change.start <= now:
            continue
        due = change.noticed_at or now
        if not start <= due < end:
            continue
        local = zone(target.timezone)
        out.append(
            PlannedSend(
                **base,
                key=f"{occurrence_key(campaign.id, event.id, session)}/moved-{change.start:%Y%m%dT%H%MZ}",
                due=due,
                reference=due,
                timezone=target.timezone,
                event=event.id,
                session=session,
                languages=(target.language,) if isinstance(target, Session) else campaign.languages,
                not_after=change.start,
                reason=(
                    f"moved from {change.announced.astimezone(local):%a %d %b %H:%M} to "
                    f"{change.start.astimezone(local):%a %d %b %H:%M} {target.timezone} "
                    "after reminders went out"
                ),
            )
        )
    return out


def effective_language(language: str, offered: Sequence[str], fallback: Fallback | None) -> str:
    """The campaign language a subscriber reads: the first of their fallback chain on offer."""
    chain = fallback(language) if fallback else (language,)
    return pick_language(chain, offered, offered[0] if offered else language)


def _spread(
    send: PlannedSend, campaign: Campaign, timezones: Mapping[str, int]
) -> tuple[datetime, datetime | None]:
    """(first, last) subscriber's time: local hours and quiet hours spread a send over the zones."""
    if campaign.local_time is None and campaign.quiet_hours is None:
        return send.due, None
    reference = send.reference or send.due
    times = [
        recipient_time(
            reference,
            tz,
            local_time=campaign.local_time,
            quiet_hours=campaign.quiet_hours,
            not_after=send.not_after,
        )
        for tz in ([tz for tz, n in timezones.items() if n] or ["UTC"])
    ]
    return min(times), max(times)


def plan(
    schedules: Schedules,
    *,
    audience_sizes: Mapping[str, Mapping[str, int]],
    now: datetime,
    days: int = 30,
    new_items: Mapping[str, int] | None = None,
    audience_timezones: Mapping[str, Mapping[str, int]] | None = None,
    fallback: Fallback | None = None,
    start: datetime | None = None,
    moved: Mapping[tuple[str, str], Moved] | None = None,
) -> list[PlannedSend]:
    """Every send due from `start` (default `now`) to `now + days`, earliest first.

    audience_sizes: per campaign id, subscribers per subscriber language; audience_timezones: per
    campaign id, subscribers per IANA zone (needed for local_time and quiet hours); new_items: per
    campaign id, items since its last digest; fallback: a language's fallback chain (Site.fallback_chain);
    moved: per (event, session or ""), a start that differs from what sent reminders announced.
    """
    if now.tzinfo is None:
        raise ValueError("plan: `now` must be timezone-aware")
    begin = start or now
    # A local-time send may fire up to a day before its trigger instant: look that far ahead too.
    raw = expand(schedules, begin - timedelta(days=1), now + timedelta(days=days, hours=26), moved, now)
    by_language: dict[str, dict[str, int]] = {}
    chains: dict[str, Sequence[str]] = {}  # fallback chains, computed once per language

    def chain(language: str) -> Sequence[str]:
        if language not in chains:
            chains[language] = fallback(language) if fallback else (language,)
        return chains[language]

    out = []
    end = now + timedelta(days=days)
    for send in raw:
        campaign = schedules.campaigns[send.campaign]
        due, last_at = _spread(send, campaign, (audience_timezones or {}).get(campaign.id, {}))
        if not begin <= due < end:
            continue
        # A per-session audience (registrants of that session) is counted under "campaign/session".
        sized = (
            f"{campaign.id}/{send.session}"
            if f"{campaign.id}/{send.session}" in audience_sizes
            else campaign.id
        )
        # ... and reaches them whatever their language: the session's is the only one on offer.
        everyone = campaign.audience.registered_for or campaign.trigger.kind == "on_change"
        offered = send.languages if sized != campaign.id and everyone else campaign.languages
        if sized not in by_language:
            sizes: dict[str, int] = {}
            for lang, n in audience_sizes.get(sized, {}).items():
                eff = effective_language(lang, offered, chain)
                sizes[eff] = sizes.get(eff, 0) + n
            by_language[sized] = sizes
        counted = {lang: n for lang, n in by_language[sized].items() if lang in send.languages}
        changes: dict[str, Any] = {
            "due": due,
            "last_at": last_at,
            "audience": sum(counted.values()),
            "audience_by_language": counted,
        }
        if send.only_if_new_items and new_items is not None:
            changes["new_items"] = new_items.get(campaign.id, 0)
            if not changes["new_items"]:
                changes["reason"] = "sent only if new items arrive before then (none yet)"
        out.append(replace(send, **changes))
    out.sort(key=lambda s: (s.due, s.campaign, s.key))
    return out


def segment_of(schedules: Schedules, campaign_id: str, event: str | None, session: str | None) -> str:
    campaign = schedules.campaigns.get(campaign_id)
    return describe(for_session(campaign.audience, event, session)) if campaign else ""


def announced(reason: str, announced: datetime, start: datetime | None) -> str:
    """A sent reminder's reason, with the start it announced when the event has moved since (sync)."""
    moved = f"announced {announced:%Y-%m-%d %H:%M} UTC"
    if start is not None:
        moved += f", now starts {start:%Y-%m-%d %H:%M} UTC"
    return f"{reason}; {moved}" if reason else moved
