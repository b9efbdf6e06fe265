"""Issue 14, webhook-driven syncs: the burst rule in the ledger (`ledger.webhook_signals`,
store/webhooks.py). The first event no run has taken asks Airflow for a run; the events after it
only add to what that run takes; the run takes them all at its start, and an event after that
asks again. Events of a portal reach only the integrations connected to that portal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.store.webhooks import READ_KEY
from hubspot_ledger.webhooks.events import read_batch
from hubspot_ledger.webhooks.signals import deliver

pytestmark = pytest.mark.integration

LATER = dt.timedelta(minutes=15)


def _connected(ledger: psycopg.Connection[Any], organization: str, portal: str) -> int:
    integration_id = LedgerHook().integrations.create(organization, dt.date(2025, 1, 1))
    ledger.execute("UPDATE ledger.integrations SET remote_id = %s, status = 'connected' "
                   "WHERE id = %s", [portal, integration_id])
    return integration_id


def test_a_burst_asks_once_and_the_run_takes_every_event(ledger: psycopg.Connection) -> None:
    hook = LedgerHook()
    integration_id = _connected(ledger, "Burst Co", "62515")
    asked = [hook.webhooks.note(integration_id, 1, {str(100 + i)}, rearm=LATER)
             for i in range(10)]
    assert asked[0] is not None and asked[1:] == [None] * 9
    state = hook.webhooks.state(integration_id)
    assert state is not None and state["pending_events"] == 10

    run_id = hook.runs.start(integration_id, "asset_triggered__1")
    taken = hook.webhooks.take(integration_id, run_id, "asset_triggered__1")
    assert taken is not None and taken.events == 10
    assert taken.deals == tuple(str(100 + i) for i in range(10))
    read = hook.runs.read(run_id, READ_KEY)
    assert read is not None and read["events"] == 10 and read["why"].startswith("10 from")

    # Taken: the next event asks for another run (it may be one the running run missed).
    assert hook.webhooks.note(integration_id, 1, set(), rearm=LATER) is not None
    assert hook.webhooks.note(integration_id, 1, set(), rearm=LATER) is None


def test_a_retried_task_takes_what_came_since_and_keeps_what_it_took(
        ledger: psycopg.Connection) -> None:
    hook = LedgerHook()
    integration_id = _connected(ledger, "Retry Co", "62515")
    run_id = hook.runs.start(integration_id, "scheduled__1")
    assert hook.webhooks.take(integration_id, run_id, "scheduled__1") is None  # nothing yet
    hook.webhooks.note(integration_id, 2, {"7"}, rearm=LATER)
    hook.webhooks.take(integration_id, run_id, "scheduled__1")
    hook.webhooks.note(integration_id, 3, {"8"}, rearm=LATER)
    hook.webhooks.take(integration_id, run_id, "scheduled__1")
    read = hook.runs.read(run_id, READ_KEY)
    assert read is not None and (read["events"], read["deals"]) == (5, ["7", "8"])


def test_events_a_run_never_took_ask_again_after_the_rearm_delay(
        ledger: psycopg.Connection) -> None:
    """The asked-for run never came (its DAG paused, the run failed before taking them)."""
    hook = LedgerHook()
    integration_id = _connected(ledger, "Rearm Co", "62515")
    assert hook.webhooks.note(integration_id, 1, set(), rearm=LATER) is not None
    assert hook.webhooks.note(integration_id, 1, set(), rearm=LATER) is None
    assert hook.webhooks.note(integration_id, 1, set(), rearm=dt.timedelta(0)) is not None


def test_when_asking_airflow_fails_the_next_event_asks_again(
        ledger: psycopg.Connection) -> None:
    hook = LedgerHook()
    integration_id = _connected(ledger, "Unsignal Co", "62515")
    signal = hook.webhooks.note(integration_id, 1, set(), rearm=LATER)
    assert signal is not None
    hook.webhooks.unsignal(integration_id, signal)
    assert hook.webhooks.note(integration_id, 1, set(), rearm=LATER) is not None
    state = hook.webhooks.state(integration_id)
    assert state is not None and state["pending_events"] == 2


def test_a_portals_events_reach_only_the_integrations_connected_to_it(
        ledger: psycopg.Connection, books: Callable[..., int]) -> None:
    hook = LedgerHook()
    first = books("Tenant A", configured=True)
    second = books("Tenant B", configured=True)
    other = books("Tenant C", configured=True)
    unready = _connected(ledger, "Tenant D", "62515")  # connected, but no settings
    for integration_id, portal in ((first, "62515"), (second, "62515"), (other, "99999")):
        ledger.execute("UPDATE ledger.integrations SET remote_id = %s, status = 'connected' "
                       "WHERE id = %s", [portal, integration_id])
    asked: list[int] = []

    def ask(integration_id: int, events: int) -> bool:
        asked.append(integration_id)
        return True

    outcome = deliver(read_batch(
        b'[{"portalId": 62515, "subscriptionType": "deal.creation", "objectId": 5},'
        b' {"portalId": 424242, "subscriptionType": "deal.creation", "objectId": 6}]'),
        ask, hook)
    assert sorted(asked) == sorted(outcome.asked) == sorted([first, second])
    assert outcome.not_ready == [unready] and outcome.unknown_portals == [424242]
    assert hook.webhooks.state(other) is None and hook.webhooks.state(unready) is None
    state = hook.webhooks.state(first)
    assert state is not None and list(state["pending_deals"]) == ["5"]

    # Airflow does not know the DAG yet: nothing stays asked for, the next event asks again.
    later = deliver(read_batch(b'[{"portalId": 99999}]'), lambda i, n: False, hook)
    assert later.asked == []
    state = hook.webhooks.state(other)
    assert state is not None and state["signalled_at"] is None and state["pending_events"] == 1
