"""One request budget per HubSpot portal, shared by every process that calls it.

HubSpot limits an OAuth app per installing portal: 110 requests per rolling 10 seconds, and the
search endpoints separately at about 5 per second (hubspot-api.md). Several tasks and several
runs of the same portal may call at once, on different workers, so the budget lives in the
ledger database: a token bucket per (portal, kind), taken by one atomic UPSERT per request.

A bucket of capacity C refilled at r/s lets through at most C + r·W requests in any window W, so
C and r are chosen just below HubSpot's limits. A caller that finds
the bucket empty gets a reservation (tokens go negative) and sleeps exactly until its turn: no
polling, no 429 storm, first come first served across processes.

No caller ever waits longer than `max_hold()` seconds (60 by default): a bucket never goes
below −max_hold·rate, whatever 429s, Retry-After headers or earlier versions put in it, so a
HubSpot asking for a day (`Retry-After: 86400`) holds the portal back a minute at most.
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
    capacity: float  # burst
    rate: float  # sustained requests per second


def _rate(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# The longest a caller waits for its turn, and the longest a 429 holds the portal back: the
# same variable as the HubSpot hook's cap on Retry-After (hubspot_ledger.hooks.hubspot).
MAX_HOLD_SECONDS = 60.0


def max_hold() -> float:
    """At least a second: the floor is also the room for callers queueing for their turn."""
    return max(float(os.environ.get("HUBSPOT_LEDGER_RETRY_AFTER_CAP", MAX_HOLD_SECONDS)), 1.0)


# With a capacity of one request, calls leave at least 1/rate apart, so any window W holds at
# most ⌊rate·W⌋ + 1 of them: 102 + 1 = 103 ≤ 110 per 10 s, and ⌊4.0⌋ + 1 = 5 per second for
# search. The margin is for jitter: calls bunch up in transit and on a busy server, and the
# benchmark on a loaded machine drew a few 429s at 10.8/4.9, 10.5/4.6 and 10.4/4.4 (none at
# these rates, for the same wall time). Operators whose portal answers 429 anyway can lower
# them (HubSpot's published search limit has varied between 4 and 5 per second).
BUDGETS = {
    "general": Budget(capacity=1, rate=_rate("HUBSPOT_LEDGER_GENERAL_RATE", 10.2)),
    "search": Budget(capacity=1, rate=_rate("HUBSPOT_LEDGER_SEARCH_RATE", 4.0)),
}

# %(floor)s = −max_hold·rate: the deepest a bucket goes (its last caller waits max_hold).
_TAKE = """
INSERT INTO ledger.hubspot_rate_buckets AS b (portal_id, bucket, tokens, updated_at)
VALUES (%(portal)s, %(bucket)s, %(capacity)s - 1, clock_timestamp())
ON CONFLICT (portal_id, bucket) DO UPDATE SET
    tokens = greatest(%(floor)s, least(%(capacity)s, b.tokens + %(rate)s
                      * extract(epoch FROM clock_timestamp() - b.updated_at)) - 1),
    updated_at = clock_timestamp()
RETURNING tokens
"""

# A 429: nobody's next request before `seconds` from now (reservations already made keep
# their turn), and never deeper than the floor.
_DRAIN = """
UPDATE ledger.hubspot_rate_buckets SET
    tokens = greatest(%(floor)s, least(tokens + %(rate)s
                      * extract(epoch FROM clock_timestamp() - updated_at), 0)
                      - %(seconds)s * %(rate)s),
    updated_at = clock_timestamp()
WHERE portal_id = %(portal)s AND bucket = %(bucket)s
"""


def bucket_of(path: str) -> str:
    """Which budget a request spends: search endpoints have their own."""
    return "search" if path.rstrip("/").endswith("/search") else "general"


class PortalRateLimiter:
    """`acquire(path)` before every HubSpot API call of one portal; `backoff` after a 429."""

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
        """Take one request from the portal's budget; sleeps until it is this caller's turn.
        Returns the seconds waited."""
        bucket = bucket_of(path)
        budget = self.budgets[bucket]
        tokens = float(self._execute(_TAKE, {"portal": self.portal_id, "bucket": bucket,
                                             "capacity": budget.capacity,
                                             "rate": budget.rate,
                                             "floor": -max_hold() * budget.rate}))
        if tokens >= 0:
            return 0.0
        wait = min(-tokens / budget.rate, max_hold())
        self.waited += wait
        time.sleep(wait)
        return wait

    def backoff(self, path: str, seconds: float) -> None:
        """HubSpot said 429 anyway (another app? a clock skew?): hold everyone back, for
        `seconds` but never longer than `max_hold()`."""
        bucket = bucket_of(path)
        seconds = min(max(seconds, 0.0), max_hold())
        rate = self.budgets[bucket].rate
        log.warning("HubSpot rate limit hit on the %s budget of portal %s: every caller of this "
                    "portal waits %.1fs", bucket, self.portal_id, seconds)
        self._execute(_DRAIN + " RETURNING tokens", {
            "portal": self.portal_id, "bucket": bucket, "seconds": seconds, "rate": rate,
            "floor": -max_hold() * rate})

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
