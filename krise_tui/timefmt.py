"""Times shown to people: one place that turns a stored UTC instant into local wall time.

krise stores and transmits every time as an aware UTC ``datetime``; only what a person
reads (the website, the Atom feed's human text, the console, a CAP preview) is shown in
the municipality's time zone, taken from the org file (``timezone``, default
``Europe/Oslo``). Norwegian readers expect ``27.11.2026 kl. 10:00``; English readers get
``27 Nov 2026, 10:00``. Both use the 24-hour clock and no locale database, so the output
does not depend on the machine's locale settings.

This module is a leaf: it imports only the standard library, so the console, the
channels, the exports and the playbook models can all use it without import cycles.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Europe/Oslo"
"""The time zone of Norwegian municipalities (CET/CEST); the org file may name another."""

ENGLISH_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
"""English month abbreviations (spelt out here so the machine's locale cannot change them)."""

ENGLISH = frozenset({"en"})
"""Language codes (the part before any ``-``) that get the English formats; every other
language, ``nb``, ``nn``, ``sma``, ``se``… included, gets the Norwegian numeric ones, which
are what readers in Norway expect whatever language the text is in."""


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Oslo``). Raises ValueError for an unknown one."""
    # ZoneInfo accepts a path-like key and raises several kinds of error for bad ones;
    # every one of them means "not a time zone" to the person who wrote the org file.
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise ValueError(f"{name!r} is not an IANA time zone name (like Europe/Oslo)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not an IANA time zone name (like Europe/Oslo)") from None


def check_timezone(name: str) -> str:
    """``name`` unchanged when it is a known IANA time zone; ValueError otherwise."""
    zone(name)
    return name


def local_time(dt: datetime, tz: str | tzinfo = DEFAULT_TIMEZONE) -> datetime:
    """``dt`` as wall time in ``tz`` (a zone name or a tzinfo).

    Raises ValueError for a naive ``dt``: guessing its zone is how a published time ends
    up an hour wrong.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a time to show must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(zone(tz) if isinstance(tz, str) else tz)


def _english(lang: str) -> bool:
    return lang.split("-", 1)[0].lower() in ENGLISH


def format_time(dt: datetime, tz: str | tzinfo = DEFAULT_TIMEZONE, lang: str = "nb") -> str:
    """The local clock time, ``10:00`` (24-hour clock in every language)."""
    del lang  # same in every language; the parameter keeps the three formatters alike
    return f"{local_time(dt, tz):%H:%M}"


def format_date(dt: datetime, tz: str | tzinfo = DEFAULT_TIMEZONE, lang: str = "nb") -> str:
    """The local date: ``27.11.2026`` (Norwegian) or ``27 Nov 2026`` (English)."""
    local = local_time(dt, tz)
    if _english(lang):
        return f"{local.day} {ENGLISH_MONTHS[local.month - 1]} {local.year}"
    return f"{local:%d.%m.%Y}"


def format_datetime(dt: datetime, tz: str | tzinfo = DEFAULT_TIMEZONE, lang: str = "nb") -> str:
    """Local date and time: ``27.11.2026 kl. 10:00`` or ``27 Nov 2026, 10:00``."""
    date = format_date(dt, tz, lang)
    time = format_time(dt, tz, lang)
    return f"{date}, {time}" if _english(lang) else f"{date} kl. {time}"


def iso_local(dt: datetime, tz: str | tzinfo = DEFAULT_TIMEZONE) -> str:
    """Machine-readable local time with its offset, ``2026-11-27T11:00:00+01:00``.

    For HTML ``<time datetime>``: the offset keeps the instant exact while matching the
    wall time printed beside it. Microseconds are dropped (nobody reads them).
    """
    return local_time(dt, tz).replace(microsecond=0).isoformat()


__all__ = [
    "DEFAULT_TIMEZONE",
    "check_timezone",
    "format_date",
    "format_datetime",
    "format_time",
    "iso_local",
    "local_time",
    "zone",
]
