"""Timestamps as HubSpot writes them: ISO-8601 UTC with milliseconds and `Z`; inside, epoch ms."""

from __future__ import annotations

import datetime as dt
import time

UTC = dt.UTC


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    """`1735689599999` → `2024-12-31T23:59:59.999Z` (what HubSpot sends for datetimes)."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def ms_of(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
          millis: int = 0) -> int:
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + millis


def parse_time(value: object) -> int | None:
    """Epoch ms (int or digit string) or an ISO date/datetime → epoch ms; None if unparseable.

    HubSpot accepts both forms wherever it takes a time; a bare date means midnight UTC.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return ms_of(day.year, day.month, day.day)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
