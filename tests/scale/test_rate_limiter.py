"""The per-portal rate budget (issues 5 and 12): HubSpot's rolling windows, shared by
concurrent callers in several threads and processes, bursting up to what the window has left,
no 429 from HubSpot.

Real parts: the sandbox enforces its rolling-window limits over HTTP, the budget lives in this
run's ledger database. The sandbox's limits are scaled down (20 per 2 s, search 3/s) so the test
takes seconds; the limiter gets budgets with a margin like production's (18 of 20, 2 of 3).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from support import StaticToken, api_version_extra

from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.ratelimit import Budget, PortalRateLimiter, bucket_of
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]

# The guard is wider than production's 0.5 s: this machine runs the sandbox, four client
# processes and PostgreSQL on a couple of shared CPUs, so a request may reach the sandbox's
# counter a second after its slot.
TEST_BUDGETS = {"general": Budget(limit=18, seconds=2.0, guard=1.0),
                "search": Budget(limit=2, seconds=1.0, guard=0.3)}


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(seed=1, scale="tiny", rate_limit=20, rate_window=2.0,
                       search_rate=3) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(
            {"conn_type": "http", "host": sb.url, "login": sb.client_id,
             "password": sb.client_secret, "extra": api_version_extra()}))
        yield sb


def _caller(sb: SandboxServer, token: str, results: list[float], n: int) -> None:
    limiter = PortalRateLimiter(str(sb.portal_id), LedgerHook()._connect, TEST_BUDGETS)
    hook = HubSpotHook(token_source=StaticToken(token), limiter=limiter)
    for i in range(n):
        hook.request("GET", "/crm/v3/objects/products", params={"limit": 1})
        if i % 5 == 0:
            hook.request("POST", "/crm/v3/objects/deals/search", json_body={"limit": 1})
    limiter.close()
    results.append(limiter.waited)


def test_two_concurrent_callers_share_one_budget_and_never_see_a_429(
        ledger: psycopg.Connection, sandbox: SandboxServer) -> None:
    token = sandbox.issue_tokens()["access_token"]
    sandbox.clear_requests()
    waited: list[float] = []
    threads = [threading.Thread(target=_caller, args=(sandbox, token, waited, 24))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    sent = sandbox.requests()
    assert len(sent) == 2 * (24 + 5)
    assert [r for r in sent if r["status"] == 429] == []
    assert sum(waited) > 1.0  # the budget did hold callers back


def test_without_the_limiter_the_same_load_is_refused(sandbox: SandboxServer) -> None:
    """The control: the sandbox really enforces the window the limiter keeps to."""
    token = sandbox.issue_tokens()["access_token"]
    statuses = [requests.get(f"{sandbox.url}/crm/v3/objects/products", params={"limit": 1},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code
                for _ in range(30)]
    assert 429 in statuses


def test_search_endpoints_spend_their_own_budget() -> None:
    assert bucket_of("/crm/v3/objects/deals/search") == "search"
    assert bucket_of("/crm/v3/objects/deals/batch/read") == "general"
    assert bucket_of("/crm/v4/associations/deals/companies/batch/read") == "general"


def test_a_429_holds_every_caller_of_the_portal_back(ledger: psycopg.Connection) -> None:
    limiter = PortalRateLimiter("777", LedgerHook()._connect, TEST_BUDGETS)
    limiter.acquire("/crm/v3/objects/products")
    limiter.backoff("/crm/v3/objects/products", 1.0)
    other = PortalRateLimiter("777", LedgerHook()._connect, TEST_BUDGETS)
    assert other.acquire("/crm/v3/objects/products") >= 0.9
    limiter.close()
    other.close()
    row: Any = ledger.execute("SELECT count(*) FROM ledger.hubspot_rate_buckets "
                              "WHERE portal_id = '777' AND bucket = 'general'").fetchone()
    assert row[0] == 1


# -- several processes, one budget, the burst (issue 12) ----------------------------------------

PROCESSES = 4
PER_PROCESS = 12


def _process_caller(url: str, token: str, portal: str, ready: Any, go: Any) -> None:
    """One worker process: its own hook, limiter and ledger connection; sends when all are
    ready, from several threads sharing the hook (requests in flight at once)."""
    from concurrent.futures import ThreadPoolExecutor

    from support import StaticToken

    from hubspot_ledger.hooks.hubspot import HubSpotHook
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.ratelimit import PortalRateLimiter

    limiter = PortalRateLimiter(portal, LedgerHook()._connect, TEST_BUDGETS)
    hook = HubSpotHook(token_source=StaticToken(token), limiter=limiter)
    ready.set()
    go.wait(timeout=60)
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: hook.request("GET", "/crm/v3/objects/products",
                                             params={"limit": 1}), range(PER_PROCESS)))
    hook.close()
    limiter.close()


def test_processes_share_one_budget_burst_and_never_see_a_429(
        ledger: psycopg.Connection, sandbox: SandboxServer) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    token = sandbox.issue_tokens()["access_token"]
    sandbox.clear_requests()
    go = context.Event()
    readies = [context.Event() for _ in range(PROCESSES)]
    workers = [context.Process(target=_process_caller,
                               args=(sandbox.url, token, str(sandbox.portal_id), ready, go))
               for ready in readies]
    for worker in workers:
        worker.start()
    for ready in readies:
        assert ready.wait(timeout=120)
    go.set()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    sent = sandbox.requests()
    assert len(sent) == PROCESSES * PER_PROCESS
    assert [r for r in sent if r["status"] == 429] == []
    # The burst: the window's 18 requests went out at once. A token bucket of capacity 1 at
    # the same sustained rate (18 / 3 s) spaced any 18 requests over at least 17 / 6 s.
    first = sorted(dt.datetime.fromisoformat(r["time"]) for r in sent)[:18]
    assert (first[-1] - first[0]).total_seconds() < 17 / 6
