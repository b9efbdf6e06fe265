"""One request budget per HubSpot portal, shared by every thread, process and worker calling it.

HubSpot limits an OAuth app per installing portal (hubspot-api.md): 110 requests per *rolling*
10 seconds, search separately at 5 per second, and a daily number of requests. Several threads
of one task, several tasks and several runs of the same portal may call at once, on different
workers, so the budget lives in the ledger database and is modelled as HubSpot counts it: a
rolling window per (portal, kind), kept as the slots of the last `limit` requests granted
(migration 0012, `ledger.hubspot_take_slot`, one atomic call per request).

A caller takes the next free slot: now, while the window has room (a run bursts up to what the
window has left), else the moment the oldest of the window's requests leaves it. It then sleeps
until its slot: no polling, no 429 storm, first come first served across processes. The limits
keep a margin under HubSpot's (100 of 110, 4 of 5): requests bunch up in transit and on a busy
server, so they may arrive a little closer together than they were granted.

No caller waits because of a 429 longer than `max_hold()` seconds (60 by default): a HubSpot
asking for a day (`Retry-After: 86400`) holds the portal back a minute at most. When the portal's
daily budget is spent, `acquire` raises `DailyBudgetSpent`: the run stops, the next one resumes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """At most `limit` requests in any `seconds` (a rolling window), granted `guard` seconds
    further apart than that.

    Why the guard: a slot is granted when the request is about to leave, but HubSpot counts it
    when it arrives. A burst granted at once arrives spread out (threads waking, connections
    opening, the network); if the next window's burst then arrives on time, HubSpot's window
    holds the late part of the last burst as well, and a margin on the count alone cannot help
    (a whole burst can be late). With the windows granted `guard` apart, any request that
    arrives at most `guard` late is counted in its own window."""

    limit: int
    seconds: float
    guard: float = 0.0

    @property
    def span(self) -> float:
        """The window the budget grants in."""
        return self.seconds + self.guard

    @property
    def rate(self) -> float:
        """Sustained requests per second."""
        return self.limit / self.span


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# The longest a 429 holds the portal back: the same variable as the HubSpot hook's cap on
# Retry-After (hubspot_ledger.hooks.hubspot).
MAX_HOLD_SECONDS = 60.0


def max_hold() -> float:
    return max(float(os.environ.get("HUBSPOT_LEDGER_RETRY_AFTER_CAP", MAX_HOLD_SECONDS)), 1.0)


def _guard(default: float) -> float:
    return float(os.environ.get("HUBSPOT_LEDGER_RATE_GUARD_SECONDS", default))


# HubSpot's 110 / 10 s and 5 / s, with a margin on the count (another app's odd request, a
# clock step) and a guard on the window (requests arriving late, see Budget): 104 per 10.5 s is
# 9.9/s sustained, 4 per 1.1 s 3.6/s. Operators whose portal answers 429 anyway (another app of
# the same portal) lower the limits.
BUDGETS = {
    "general": Budget(limit=_int("HUBSPOT_LEDGER_GENERAL_LIMIT", 104), seconds=10.0,
                      guard=_guard(0.5)),
    "search": Budget(limit=_int("HUBSPOT_LEDGER_SEARCH_LIMIT", 4), seconds=1.0,
                     guard=_guard(0.1)),
}
# HubSpot's daily limit (250,000 for most portals, shared by every app of the portal) less a
# margin left to the portal's other apps. HUBSPOT_LEDGER_DAILY_LIMIT overrides it (0: no limit).
DAILY_LIMIT = 250_000 - 1_000


def daily_limit() -> int | None:
    value = _int("HUBSPOT_LEDGER_DAILY_LIMIT", DAILY_LIMIT)
    return value if value > 0 else None


class DailyBudgetSpent(Exception):
    """The portal's daily request budget is spent: nothing more is sent today."""


# A 429: nobody's next request before `seconds` from now (never more than max_hold).
_HOLD = """
UPDATE ledger.hubspot_rate_buckets SET
    held_until = greatest(coalesce(held_until, 0),
                          extract(epoch FROM clock_timestamp()) + %(seconds)s),
    updated_at = clock_timestamp()
WHERE portal_id = %(portal)s AND bucket = %(bucket)s
RETURNING held_until
"""


def bucket_of(path: str) -> str:
    """Which budget a request spends: search endpoints have their own."""
    return "search" if path.rstrip("/").endswith("/search") else "general"


class PortalRateLimiter:
    """`acquire(path)` before every HubSpot API call of one portal; `backoff` after a 429.
    Thread-safe: the threads of one task share it (and its one ledger connection)."""

    def __init__(self, portal_id: str, connect: Any,
                 budgets: dict[str, Budget] | None = None) -> None:
        self.portal_id = str(portal_id)
        self.budgets = budgets or BUDGETS
        self._connect = connect  # () -> psycopg.Connection; reconnects after a ledger restart
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for the budget, for logs and benchmarks

    def _execute(self, query: str, params: dict[str, Any]) -> Any:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect()
                        self._conn.autocommit = True
                    row = self._conn.execute(query, params).fetchone()
                    return None if row is None else row[0]
                except psycopg.OperationalError:
                    self._conn = None
                    if attempt == 2:
                        raise
            return None

    def acquire(self, path: str) -> float:
        """Take one request from the portal's budget; sleeps until this caller's slot.
        Returns the seconds waited; raises DailyBudgetSpent when the day's budget is gone."""
        bucket = bucket_of(path)
        budget = self.budgets[bucket]
        wait = self._execute(
            "SELECT ledger.hubspot_take_slot(%(portal)s, %(bucket)s, %(limit)s, %(window)s, "
            "%(hold)s, %(daily)s)",
            {"portal": self.portal_id, "bucket": bucket, "limit": budget.limit,
             "window": budget.span, "hold": max_hold(), "daily": daily_limit()})
        if wait is None:
            raise DailyBudgetSpent(
                f"HubSpot's daily API budget of portal {self.portal_id} is spent "
                f"({daily_limit():,} requests today, HUBSPOT_LEDGER_DAILY_LIMIT); the sync stops "
                "here and the next run resumes")
        wait = float(wait)
        if wait <= 0:
            return 0.0
        with self._lock:
            self.waited += wait
        time.sleep(wait)
        return wait

    def backoff(self, path: str, seconds: float) -> None:
        """HubSpot said 429 anyway (another app? a clock skew?): hold everyone back, for
        `seconds` but never longer than `max_hold()`."""
        bucket = bucket_of(path)
        seconds = min(max(seconds, 0.0), max_hold())
        log.warning("HubSpot rate limit hit on the %s budget of portal %s: every caller of this "
                    "portal waits %.1fs", bucket, self.portal_id, seconds)
        self._execute(_HOLD, {"portal": self.portal_id, "bucket": bucket, "seconds": seconds})

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
