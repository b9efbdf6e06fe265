"""Webhook signals (issue 14): which integrations a portal's webhook events are for, and the
burst rule — one asset event asks Airflow for a run, and the run takes every event received
until it starts (`ledger.webhook_signals`, migration 0020).

    note(…)  the endpoint records a call's events; True: no run has been asked for them yet
             (or the request is older than `rearm`, and no run took them), so the caller asks
    take(…)  a run's first sync task takes every pending event: later events ask again
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hubspot_ledger.load.records import Provider
from hubspot_ledger.store.base import Repository

# The key of what a run took under its row's `reads` (the run report prints "Read webhook
# events: …"), and the deals it names: the deals step reads them by id too.
READ_KEY = "webhook event"
MAX_PENDING_DEALS = 1_000


@dataclass(frozen=True)
class Taken:
    """What a run took: the events HubSpot sent since the last run took any."""

    events: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    deals: tuple[str, ...]

    def describe(self) -> str:
        when = (f" received {self.first_at:%Y-%m-%d %H:%M:%S} to {self.last_at:%H:%M:%S} UTC"
                if self.first_at and self.last_at else "")
        deals = f"; deals also read by id: {', '.join(self.deals)}" if self.deals else ""
        return f"{self.events:,} from HubSpot's webhooks{when}{deals}"


class Webhooks(Repository):
    def portal_integrations(self, portal_id: int) -> list[int]:
        """The HubSpot integrations connected to `portal_id` (one portal per integration; a
        portal may be connected by more than one integration, each of its own tenant)."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT id FROM ledger.integrations WHERE provider = %s AND remote_id = %s "
                "ORDER BY id", [Provider.HUBSPOT.value, str(portal_id)]).fetchall()
        return [int(r[0]) for r in rows]

    def note(self, integration_id: int, events: int, deals: Collection[str], *,
             rearm: dt.timedelta) -> str | None:
        """Record `events` (naming `deals`) for the integration. Returns a signal id when the
        caller must ask Airflow for a run (the first event no run has taken yet, or one after
        `rearm` without a run taking them), else None: a run was asked for already."""
        token = uuid.uuid4().hex
        wanted = sorted(set(deals))[:MAX_PENDING_DEALS]
        with self._session() as conn:
            row = conn.execute(
                "INSERT INTO ledger.webhook_signals AS s (integration_id, pending_events, "
                "first_pending_at, last_event_at, pending_deals, signalled_at, signal_token, "
                "events_received) VALUES (%(id)s, %(n)s, now(), now(), %(deals)s, now(), "
                "%(token)s, %(n)s) "
                "ON CONFLICT (integration_id) DO UPDATE SET "
                "pending_events = s.pending_events + excluded.pending_events, "
                "first_pending_at = coalesce(s.first_pending_at, now()), "
                "last_event_at = now(), "
                "pending_deals = (SELECT coalesce(array_agg(d ORDER BY d), '{}') FROM ("
                "  SELECT DISTINCT d FROM unnest(s.pending_deals || excluded.pending_deals) d "
                "  ORDER BY d LIMIT %(max)s) kept), "
                "signal_token = CASE WHEN s.signalled_at IS NULL OR s.signalled_at < now() - "
                "  %(rearm)s THEN excluded.signal_token ELSE s.signal_token END, "
                "signalled_at = CASE WHEN s.signalled_at IS NULL OR s.signalled_at < now() - "
                "  %(rearm)s THEN now() ELSE s.signalled_at END, "
                "events_received = s.events_received + excluded.events_received "
                "RETURNING signal_token = %(token)s",
                {"id": integration_id, "n": events, "deals": wanted, "token": token,
                 "max": MAX_PENDING_DEALS, "rearm": rearm}).fetchone()
        return token if row and row[0] else None

    def unsignal(self, integration_id: int, signal_token: str) -> None:
        """Asking Airflow failed: the next event asks again (the events stay pending)."""
        with self._session() as conn:
            conn.execute("UPDATE ledger.webhook_signals SET signalled_at = NULL, "
                         "signal_token = NULL WHERE integration_id = %s AND signal_token = %s",
                         [integration_id, signal_token])

    def take(self, integration_id: int, run_id: int, dag_run_id: str) -> Taken | None:
        """The run (`run_id`, its DAG run `dag_run_id`) takes every pending event: they are
        cleared, an event after this asks for another run, and the run's row records what it
        took (`reads[READ_KEY]`, added to what an earlier try of the same task took). None:
        nothing was pending."""
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "SELECT pending_events, first_pending_at, last_event_at, pending_deals "
                "FROM ledger.webhook_signals WHERE integration_id = %s FOR UPDATE",
                [integration_id]).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE ledger.webhook_signals SET pending_events = 0, first_pending_at = NULL,"
                " pending_deals = '{}', signalled_at = NULL, signal_token = NULL, "
                "taken_at = now(), taken_by = %s WHERE integration_id = %s",
                [dag_run_id, integration_id])
            if not row[0]:
                return None
            before = conn.execute("SELECT reads -> %s FROM ledger.sync_runs WHERE id = %s",
                                  [READ_KEY, run_id]).fetchone()
            taken = _merged(before[0] if before else None, Taken(
                events=int(row[0]), first_at=row[1], last_at=row[2], deals=tuple(row[3])))
            conn.execute(
                "UPDATE ledger.sync_runs SET reads = reads || jsonb_build_object(%s::text, "
                "%s::jsonb) WHERE id = %s", [READ_KEY, json.dumps(_as_read(taken)), run_id])
        return taken

    def state(self, integration_id: int) -> dict[str, Any] | None:
        """The integration's row (operators, tests)."""
        with self._session() as conn:
            cursor = conn.execute("SELECT * FROM ledger.webhook_signals "
                                  "WHERE integration_id = %s", [integration_id])
            row = cursor.fetchone()
            names = [c.name for c in cursor.description or ()]
        return None if row is None else dict(zip(names, row, strict=True))


def _as_read(taken: Taken) -> dict[str, Any]:
    return {"events": taken.events,
            "first_at": taken.first_at.isoformat() if taken.first_at else None,
            "last_at": taken.last_at.isoformat() if taken.last_at else None,
            "deals": list(taken.deals), "why": taken.describe()}


def _merged(earlier: dict[str, Any] | None, now: Taken) -> Taken:
    """What an earlier try of the same task took, and what this one takes."""
    if not earlier:
        return now
    first = earlier.get("first_at")
    first_at = dt.datetime.fromisoformat(first) if first else None
    deals = sorted({*earlier.get("deals", ()), *now.deals})[:MAX_PENDING_DEALS]
    return Taken(events=int(earlier.get("events", 0)) + now.events,
                 first_at=min(filter(None, (first_at, now.first_at)), default=None),
                 last_at=now.last_at, deals=tuple(deals))


def named_deals(read: dict[str, Any] | None) -> frozenset[str]:
    """The deals a run's webhook events named (its `reads[READ_KEY]`)."""
    return frozenset(str(d) for d in (read or {}).get("deals", ()))
