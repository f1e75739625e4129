"""Pure time helpers for schedules: durations, local wall times, recurrences, per-subscriber hours.

Everything here takes the clock as an argument. Local times are built from a calendar date plus a
wall-clock time in an IANA zone, then converted to UTC: that is what keeps a recurring 09:00 at
09:00 across DST changes (one instance per local date, never two, never none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_LOCAL = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{1,2}:\d{2}(?::\d{2})?))?\s*(Z|[+-]\d{2}:?\d{2})?$")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError names it when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" (a folder), a name too long
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as Europe/London or America/New_York"
        ) from None


def parse_duration(text: str) -> timedelta:
    """`14d`, `1d`, `1h`, `30m`, `2w`, `1d12h` -> timedelta; ValueError otherwise."""
    match = _DURATION.match(str(text).strip().lower())
    if not match or not any(match.groups()):
        raise ValueError(f"duration {text!r}: write it like 14d, 1d, 1h, 30m, 2w or 1d12h")
    weeks, days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)


def parse_hhmm(text: str) -> time:
    """`09:00` -> time(9, 0); ValueError otherwise."""
    match = _HHMM.match(str(text).strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"time {text!r}: write it as HH:MM, e.g. 09:00")
    return time(int(match.group(1)), int(match.group(2)))


def parse_local(text: str, tz: str) -> datetime:
    """`2021-04-21T14:00` read as a wall time in `tz` (an explicit offset is converted to `tz`).

    ValueError when the text is no date, or a date without a time.
    """
    match = _LOCAL.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a date and time; write it like 2021-04-21T14:00")
    day, clock, offset = match.groups()
    if clock is None:
        raise ValueError(f"{text!r} has a date but no time; write it like {day}T14:00")
    naive = datetime.fromisoformat(f"{day}T{clock.zfill(5) if len(clock) < 5 else clock}")
    if offset:
        fixed = datetime.fromisoformat(naive.isoformat() + ("+00:00" if offset == "Z" else offset))
        return fixed.astimezone(zone(tz))
    return naive.replace(tzinfo=zone(tz))


@lru_cache(maxsize=65536)  # a plan asks for the same (day, hour, zone) for many sends
def wall_time(day: date, clock: time, tz: str) -> datetime:
    """`clock` on `day` in `tz` as an aware UTC datetime.

    In a spring-forward gap the time is read with the offset before the change (02:30 that does not
    exist becomes 03:30 summer time); in a fall-back overlap the first of the two is taken.
    """
    return datetime.combine(day, clock, tzinfo=zone(tz)).astimezone(UTC)


@dataclass(frozen=True)
class Every:
    """A recurrence like `monday 09:00 Europe/London` (or `day 08:00 UTC` for every day)."""

    weekdays: frozenset[int]
    clock: time
    timezone: str

    def instances(self, start: datetime, end: datetime) -> list[tuple[date, datetime]]:
        """(local date, UTC instant) of every instance with start <= instant < end."""
        tz = zone(self.timezone)
        day = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date() + timedelta(days=1)
        out = []
        while day <= last:
            if day.weekday() in self.weekdays:
                when = wall_time(day, self.clock, self.timezone)
                if start <= when < end:
                    out.append((day, when))
            day += timedelta(days=1)
        return out


def parse_every(text: str) -> Every:
    """`monday 09:00 Europe/London`, `mondays 09:00 UTC`, `day 07:30 Africa/Nairobi`."""
    parts = str(text).split()
    if len(parts) != 3:
        raise ValueError(
            f"every: {text!r}: write it as WEEKDAY HH:MM TIMEZONE, e.g. 'monday 09:00 Europe/London'"
        )
    word, clock, tz = parts
    word = word.lower().rstrip("s") if word.lower() not in {"day", "days"} else "day"
    if word in {"day", "daily"}:
        weekdays = frozenset(range(7))
    elif word in WEEKDAYS:
        weekdays = frozenset({WEEKDAYS.index(word)})
    else:
        raise ValueError(f"every: {parts[0]!r} is not a weekday; use {', '.join(WEEKDAYS)} or day")
    return Every(weekdays, parse_hhmm(clock), zone(tz).key)


def local_date(instant: datetime, tz: str) -> date:
    return instant.astimezone(zone(tz)).date()


def in_quiet_hours(clock: time, quiet: tuple[time, time]) -> bool:
    start, end = quiet
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end  # spans midnight, e.g. 22:00-07:00


def recipient_time(
    due: datetime,
    tz: str,
    *,
    local_time: time | None = None,
    quiet_hours: tuple[time, time] | None = None,
    not_after: datetime | None = None,
) -> datetime:
    """When one subscriber in `tz` gets an occurrence due at `due` (UTC).

    With `local_time`, at that hour on the subscriber's local date of `due` (Timewarp); out of
    `quiet_hours`, moved to the end of the quiet spell. Never at or after `not_after` (a reminder's
    event start): then `due` itself.
    """
    when = due
    if local_time is not None:
        when = wall_time(local_date(due, tz), local_time, tz)
    if quiet_hours is not None:
        local = when.astimezone(zone(tz))
        if in_quiet_hours(local.time(), quiet_hours):
            day = local.date() if local.time() < quiet_hours[1] else local.date() + timedelta(days=1)
            when = wall_time(day, quiet_hours[1], tz)
    if not_after is not None and when >= not_after:
        return due
    return when
