"""Backfill windows by calendar month, and how far a window's read reaches (issue 15).

Pure date arithmetic, no Airflow: the timetable (`hubspot_ledger.timetable`) makes the windows,
the sync (`sync.runner`) decides what a backfill run reads from its window.

A backfill run reads the records HubSpot last modified inside its window [start, end). Two
windows of a backfill reach further, so that a backfill from the cutoff date to now leaves the
ledger equal to one full sync:

- the window holding the cutoff date also reads everything modified before it: a product (every
  product is synced, whatever its date), or a deal closing after the cutoff but last edited
  before it, has no window of its own in a backfill that starts at the cutoff;
- the latest window Airflow creates also reads up to now: Airflow creates only windows that have
  ended, so the current month has none, and a record edited this month would wait for the next
  scheduled run (issue 15: "never covered the current interval").
"""

from __future__ import annotations

import datetime as dt

# A window per calendar month: three years of history are 36 runs (issue 15 asks ≤ ~60).
DEFAULT_BACKFILL_MONTHS = 1
# Before anything HubSpot can have modified: "from the beginning".
BEGINNING = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Window = tuple[dt.datetime, dt.datetime]


def month_start(when: dt.datetime) -> dt.datetime:
    """The first instant (UTC) of the calendar month holding `when`."""
    when = when.astimezone(dt.UTC)
    return dt.datetime(when.year, when.month, 1, tzinfo=dt.UTC)


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """`when` (the first of a month) moved by whole calendar months."""
    index = when.year * 12 + when.month - 1 + months
    return when.replace(year=index // 12, month=index % 12 + 1)


def months_between(start: dt.datetime, end: dt.datetime) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def backfill_windows(start: dt.datetime, end: dt.datetime,
                     months: int = DEFAULT_BACKFILL_MONTHS) -> list[Window]:
    """The windows a backfill from `start` to `end` (both inclusive, like Airflow's) is made
    of, including the one still open at `end` (Airflow leaves that one out)."""
    windows = []
    lower = month_start(start)
    while lower <= end:
        upper = add_months(lower, months)
        windows.append((lower, upper))
        lower = upper
    return windows


def reach(window: Window, cutoff: dt.date, now: dt.datetime
          ) -> tuple[dt.datetime, dt.datetime | None]:
    """What a backfill window reads: [since, until), until None meaning "up to now". See the
    module's docstring for the two windows that reach further."""
    start, end = window
    cutoff_at = dt.datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=dt.UTC)
    since = BEGINNING if start <= cutoff_at < end else start
    until: dt.datetime | None = end
    months = months_between(start, end)
    # The next window of the same length has not ended yet, so Airflow never creates it.
    calendar = months > 0 and start == month_start(start) and end == month_start(end)
    following_end = add_months(end, months) if calendar else end + (end - start)
    if following_end > now:
        until = None
    return since, until
