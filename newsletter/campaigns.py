"""The campaign model: events with their sessions, and campaigns with their triggers and audiences.

Plain frozen dataclasses that every stage imports downward: the planner, the renderer (event details,
subjects) and the sender (audience). Times are aware datetimes; `timezone` is the IANA name they were
written in. Campaigns come from *sources* (`CampaignSource`): today the site's `schedules.yaml`
(`newsletter.schedule.config.FileSource`); `combine` joins several into one `Schedules`, refusing an id
that two sources define. Callers load once (`newsletter.schedule.load`) and pass the result down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal, Protocol

from newsletter.campaign_content import Content
from newsletter.errors import ConfigError

TriggerKind = Literal["before", "after", "every", "at", "on_change"]


@dataclass(frozen=True)
class Session:
    """One session of an event, usually one per language (a webinar held in five languages)."""

    id: str
    language: str
    start: datetime
    timezone: str
    end: datetime | None = None
    join_url: str = ""
    registration_url: str = ""
    title: dict[str, str] = field(default_factory=dict)  # overrides the event's title


@dataclass(frozen=True)
class Event:
    id: str
    kind: str  # webinar, hlm, deadline, ...
    title: dict[str, str]  # {lang: title}
    start: datetime
    timezone: str
    end: datetime | None = None
    description: dict[str, str] = field(default_factory=dict)
    location: str = ""
    url: str = ""  # the event page, or the sign-on form for a deadline
    sessions: tuple[Session, ...] = ()
    cancelled: bool = False
    where: str = ""  # file:line:column of its entry in schedules.yaml

    def session(self, session_id: str) -> Session | None:
        return next((s for s in self.sessions if s.id == session_id), None)


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    event: str | None = None  # before/after: the event id
    offset: timedelta | None = None  # before/after: how long before or after the start
    per_session: bool = False  # before/after: relative to each session instead of the event
    every: str | None = None  # every: e.g. "monday 09:00 Europe/London"
    at: datetime | None = None  # at: once, at this time
    only_if_new_items: bool = False
    max_items: int = 10
    timezone: str = "UTC"  # at: the zone `at` was written in; every: the recurrence's zone

    @property
    def relative(self) -> bool:
        return self.kind in ("before", "after")

    def describe(self) -> str:
        """`1d before each session of webinar-april`, `every monday 09:00 Europe/London`, ..."""
        if self.kind in ("before", "after"):
            target = f"each session of {self.event}" if self.per_session else str(self.event)
            return f"{format_duration(self.offset or timedelta(0))} {self.kind} {target}"
        if self.kind == "on_change":
            target = f"each session of {self.event}" if self.per_session else str(self.event)
            return f"when {target} moves after reminders went out"
        if self.kind == "every":
            return f"every {self.every}" + (" if there are new items" if self.only_if_new_items else "")
        return f"once at {self.at.isoformat() if self.at else '?'} {self.timezone}"


@dataclass(frozen=True)
class Activity:
    """Tracked actions an audience field asks about: `clicked: {label: ..., campaigns: [...]}`."""

    label: str = ""  # clicks only: the link label (empty: any link)
    campaigns: tuple[str, ...] = ()  # empty: any campaign


@dataclass(frozen=True)
class Audience:
    lists: tuple[str, ...]
    languages: tuple[str, ...] = ()  # empty: every language
    countries: tuple[str, ...] = ()  # ISO 3166 alpha-2
    regions: tuple[str, ...] = ()  # see newsletter.audience.regions
    attributes: dict[str, str] = field(default_factory=dict)  # equality on subscriber attributes
    registered_for: tuple[str, ...] = ()  # "event" or "event/session": registered for any of them
    not_registered_for: tuple[str, ...] = ()
    # Set per occurrence of an `on_change` campaign: those sent a reminder of "event[/session]".
    reminded_for: tuple[str, ...] = ()
    moved_to: datetime | None = None  # ... by a reminder that announced another start than this one
    # Behavioural segment (newsletter.audience.segments): each set field must hold.
    clicked: Activity | None = None
    not_clicked: Activity | None = None
    opened: Activity | None = None
    not_opened: Activity | None = None
    converted: bool | None = None  # a sign-on reported by the form (a `conversion` event), or none
    within: timedelta | None = None  # only actions this recent, counted back from the send
    include_machine: bool = False  # count machine opens and suspected bot clicks as actions too

    @property
    def segmented(self) -> bool:
        fields = (self.clicked, self.not_clicked, self.opened, self.not_opened, self.converted)
        return any(v is not None for v in fields)


@dataclass(frozen=True)
class Campaign:
    id: str
    template: str  # a template name under templates/, e.g. "digest"
    audience: Audience
    trigger: Trigger
    languages: tuple[str, ...]  # languages the campaign is written in
    subject: dict[str, str] = field(default_factory=dict)  # empty: from the catalog
    preheader: dict[str, str] = field(default_factory=dict)
    local_time: time | None = None  # send at this local hour in each subscriber's timezone
    quiet_hours: tuple[time, time] | None = None  # no sends between these local times
    late_by: timedelta = timedelta(hours=6)  # an overdue send is still sent within this window
    missing_translation: Literal["fallback", "block"] = "fallback"
    track: bool = True  # rewrite links to signed tracking links
    utm: bool = True
    categories: tuple[str, ...] = ()  # feed item categories for digests (empty: all)
    content: Content | None = None  # a composed campaign's texts per language (content/<name>/*.md)
    attach_ics: bool = False  # attach the event's (session's) calendar file as text/calendar
    archive: bool = False  # sent issues listed in the public archive (/archive/<list>/<lang>)
    where: str = ""  # file:line:column of its entry in schedules.yaml


@dataclass(frozen=True)
class Schedules:
    events: dict[str, Event]
    campaigns: dict[str, Campaign]
    source: str = "schedules.yaml"


def format_duration(delta: timedelta) -> str:
    """`1d12h`, `30m`: the form `schedules.yaml` writes offsets in (the inverse of parse_duration)."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return "".join(parts) or "0m"


class CampaignSource(Protocol):
    """Where events and campaigns come from: the site's files, or (composed campaigns) the store."""

    name: str  # shown in errors: "schedules.yaml", "the store"

    def load(self) -> Schedules:
        """Everything this source defines; a ConfigError (naming file, line, field) when it is invalid."""
        ...

    def stamp(self) -> object:
        """Changes whenever `load` would return something else (a file's mtime and size, a revision)."""
        ...


def combine(parts: list[Schedules]) -> Schedules:
    """One Schedules from several sources; an id defined by two of them is a ConfigError naming both."""
    if len(parts) == 1:
        return parts[0]
    events: dict[str, Event] = {}
    campaigns: dict[str, Campaign] = {}
    origin: dict[str, str] = {}
    for part in parts:
        for kind, found, into in (("event", part.events, events), ("campaign", part.campaigns, campaigns)):
            for ident, value in found.items():
                if ident in origin:
                    raise ConfigError(
                        f"{kind} id {ident!r} is defined in both {origin[ident]} and {part.source}: "
                        "ids are unique across events and campaigns of every source; rename one"
                    )
                origin[ident] = part.source
                into[ident] = value  # type: ignore[assignment]
    return Schedules(events=events, campaigns=campaigns, source=" + ".join(p.source for p in parts))
