"""Times are stored in UTC and shown in Europe/London."""

from __future__ import annotations

import functools
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes (as SQLite returns them) are UTC by our storage rule."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def to_london(value: datetime) -> datetime:
    return as_utc(value).astimezone(LONDON)


def london_date(value: datetime) -> date:
    return to_london(value).date()


@functools.lru_cache(maxsize=8192)
def london_iso(value: datetime) -> str:
    """ISO 8601 with the London offset of that instant (+00:00 in winter, +01:00 in summer). Cached: slots start
    on a shared grid, and a page of search results formats the same few dozen instants again and again."""
    return to_london(value).isoformat()
