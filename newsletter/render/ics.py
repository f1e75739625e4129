"""iCalendar files of events and sessions, and "add to calendar" links: pure, no store, no clock inside.

One VEVENT per event or session, with a UID that depends only on the site's host and the ids in
schedules.yaml (stable across runs and machines), DTSTART/DTEND in the session's own zone with its
VTIMEZONE, title and description in the session's language, the join URL, and the SEQUENCE the store
keeps for it (`newsletter.render.calendar`), so a moved session updates the entry in people's calendars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar
from icalendar import Event as VEvent

from newsletter.campaigns import Event, Session

PRODID = "-//newsletter//webinar calendar//EN"
Chain = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Entry:
    """What one calendar file announces."""

    uid: str
    event_id: str
    session_id: str  # "" for the event itself
    language: str
    title: str
    description: str
    start: datetime
    end: datetime | None
    timezone: str
    url: str  # the join URL, else the event page
    location: str
    cancelled: bool

    def fingerprint(self) -> str:
        """What, when changed, makes calendar apps update the entry: its times, zone and state."""
        parts = (self.start.astimezone(UTC).isoformat(), _iso(self.end), self.timezone, str(self.cancelled))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def uid(host: str, event_id: str, session_id: str = "") -> str:
    return f"{event_id}{'/' + session_id if session_id else ''}@{host}"


def host_of(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def _text(texts: dict[str, str], chain: Sequence[str]) -> str:
    for language in chain:
        if texts.get(language):
            return texts[language]
    return next(iter(texts.values()), "")


def entry(event: Event, session: Session | None, language: str, chain: Chain, host: str) -> Entry:
    """The calendar entry of `event` (or of its `session`, in the session's language)."""
    if session is not None:
        language = session.language
    languages = chain(language)
    target: Event | Session = session or event
    title = _text((session.title if session and session.title else event.title), languages)
    join = session.join_url if session else ""
    description = _text(event.description, languages) if event.description else ""
    if join:
        description = f"{description}\n\n{join}".strip()
    elif event.url:
        description = f"{description}\n\n{event.url}".strip()
    return Entry(
        uid=uid(host, event.id, session.id if session else ""),
        event_id=event.id,
        session_id=session.id if session else "",
        language=language,
        title=title,
        description=description,
        start=target.start,
        end=target.end,
        timezone=target.timezone,
        url=join or event.url,
        location=event.location or join,
        cancelled=event.cancelled,
    )


def entries(events: Sequence[Event], language: str, chain: Chain, host: str) -> list[Entry]:
    """Every event (in `language`) and every session (in its own) of `events`."""
    out = []
    for event in events:
        out.append(entry(event, None, language, chain, host))
        out.extend(entry(event, s, language, chain, host) for s in event.sessions)
    return out


def to_ics(items: Sequence[tuple[Entry, int]], stamp: datetime) -> bytes:
    """An iCalendar document of (entry, sequence) pairs; `stamp` is DTSTAMP (when it was published)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    for item, sequence in items:
        zone = ZoneInfo(item.timezone)
        vevent = VEvent()
        vevent.add("uid", item.uid)
        vevent.add("dtstamp", stamp.astimezone(UTC))
        vevent.add("sequence", sequence)
        vevent.add("summary", item.title)
        if item.description:
            vevent.add("description", item.description)
        vevent.add("dtstart", *_local(item.start, zone))
        if item.end is not None:
            vevent.add("dtend", *_local(item.end, zone))
        if item.url:
            vevent.add("url", item.url)
        if item.location:
            vevent.add("location", item.location)
        vevent.add("status", "CANCELLED" if item.cancelled else "CONFIRMED")
        vevent.add("transp", "TRANSPARENT" if item.cancelled else "OPAQUE")
        cal.add_component(vevent)
    if items:
        # VTIMEZONEs covering a year either side of the entries: complete for them, and short.
        first = min(i.start for i, _ in items).date() - timedelta(days=366)
        last = max((i.end or i.start) for i, _ in items).date() + timedelta(days=366)
        cal.add_missing_timezones(first_date=first, last_date=last)
    return bytes(cal.to_ical())


def _local(value: datetime, zone: ZoneInfo) -> tuple[datetime, dict[str, str] | None]:
    """A wall time with its TZID (whose VTIMEZONE is added), or UTC with Z for UTC itself.

    Written naive with an explicit TZID: given an aware value, icalendar writes a zone it takes for
    UTC (Africa/Abidjan, always +00:00) as UTC and drops the session's zone.
    """
    if zone.key in ("UTC", "Etc/UTC"):
        return value.astimezone(UTC), None
    return value.astimezone(zone).replace(tzinfo=None), {"TZID": zone.key}


def ics_path(event_id: str, session_id: str = "") -> str:
    """The public path of an entry's calendar file (no personal data in it)."""
    tail = f"{quote(event_id)}/{quote(session_id)}" if session_id else quote(event_id)
    return f"/ics/{tail}.ics"


def calendar_links(base_url: str, event_id: str, session_id: str, language: str) -> dict[str, str]:
    """Our own https URLs for the reminder: the .ics file, and redirects to Google and Outlook that are
    built from the current schedule when followed (so a link mailed before a move still adds the new time)."""
    path = ics_path(event_id, session_id)
    query = "" if session_id else "?" + urlencode({"lang": language})
    stem = path.removesuffix(".ics")
    return {
        "ics_url": f"{base_url}{path}{query}",
        "google_calendar_url": f"{base_url}{stem}/google{query}",
        "outlook_calendar_url": f"{base_url}{stem}/outlook{query}",
    }


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_url(item: Entry) -> str:
    """Google Calendar's "add event" page for the entry, times in UTC, shown in the entry's zone."""
    end = item.end or item.start
    query = {
        "action": "TEMPLATE",
        "text": item.title,
        "dates": f"{_stamp(item.start)}/{_stamp(end)}",
        "details": item.description,
        "location": item.location,
        "ctz": item.timezone,
    }
    return "https://calendar.google.com/calendar/render?" + urlencode(query)


def outlook_url(item: Entry) -> str:
    """Outlook on the web's "new event" page for the entry (ISO times with their UTC offset)."""
    end = item.end or item.start
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": item.title,
        "startdt": item.start.astimezone(UTC).isoformat(),
        "enddt": end.astimezone(UTC).isoformat(),
        "body": item.description,
        "location": item.location,
    }
    return "https://outlook.live.com/calendar/0/action/compose?" + urlencode(query)
