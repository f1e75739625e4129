"""What `schedules.yaml` describes: events with their sessions, and campaigns with their triggers.

Plain frozen dataclasses, shared by the planner, the renderer (event details, subjects) and the sender
(audience). Times are aware datetimes; `timezone` is the IANA name they were written in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal

TriggerKind = Literal["before", "after", "every", "at"]


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
        from newsletter.schedule.times import format_duration

        if self.kind in ("before", "after"):
            target = f"each session of {self.event}" if self.per_session else str(self.event)
            return f"{format_duration(self.offset or timedelta(0))} {self.kind} {target}"
        if self.kind == "every":
            return f"every {self.every}" + (" if there are new items" if self.only_if_new_items else "")
        return f"once at {self.at.isoformat() if self.at else '?'} {self.timezone}"


@dataclass(frozen=True)
class Audience:
    lists: tuple[str, ...]
    languages: tuple[str, ...] = ()  # empty: every language
    countries: tuple[str, ...] = ()  # ISO 3166 alpha-2
    regions: tuple[str, ...] = ()  # see newsletter.audience.regions
    attributes: dict[str, str] = field(default_factory=dict)  # equality on subscriber attributes


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
    where: str = ""  # file:line:column of its entry in schedules.yaml


@dataclass(frozen=True)
class Schedules:
    events: dict[str, Event]
    campaigns: dict[str, Campaign]
    source: str = "schedules.yaml"
