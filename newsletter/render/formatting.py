"""Dates, times, numbers and language names in the reader's locale and timezone (Babel)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from newsletter.errors import RenderError


@lru_cache(maxsize=64)
def locale(language: str) -> Locale:
    """The Babel locale of a site language (pt-BR -> pt_BR), or a RenderError naming it."""
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise RenderError(
            f"unknown language {language!r}: not a locale Babel knows (use codes like en, fr, pt-BR)"
        ) from None


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" (a folder), a name too long
        return ZoneInfo("UTC")  # a bad stored timezone must not stop a send; UTC is stated in the text


def direction(language: str) -> str:
    """ "rtl" for right-to-left languages (Arabic, Hebrew, ...), else "ltr"."""
    return "rtl" if locale(language).character_order == "right-to-left" else "ltr"


def language_name(code: str, in_language: str) -> str:
    """The name of language `code` written in `in_language` (e.g. "anglais" for en in fr)."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(locale(in_language))
    except (UnknownLocaleError, ValueError):
        return code
    return name or code


def format_date(value: datetime, language: str, tz: str = "UTC") -> str:
    """A long date, e.g. "8 juin 2021"."""
    return babel_dates.format_date(value.astimezone(zone(tz)).date(), "long", locale=locale(language))


def format_time(value: datetime, language: str, tz: str) -> str:
    """A short time in `tz`, e.g. "16:00" or "10:00 AM"."""
    return babel_dates.format_time(value, "short", tzinfo=zone(tz), locale=locale(language))


def format_datetime(value: datetime, language: str, tz: str) -> str:
    """Weekday, date, time and city of `tz`, e.g. "mercredi 21 avril 2021, 16:00 (Paris)"."""
    loc = locale(language)
    local = value.astimezone(zone(tz))
    day = babel_dates.format_date(local.date(), "full", locale=loc)
    time = babel_dates.format_time(local, "short", tzinfo=zone(tz), locale=loc)
    place = babel_dates.get_timezone_location(zone(tz), locale=loc, return_city=True)
    return f"{day}, {time} ({place})"


def format_number(value: float, language: str) -> str:
    return babel_numbers.format_decimal(value, locale=locale(language))
