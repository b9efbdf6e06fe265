"""The token lifecycle of a connected integration (R-AUTH-6, R-AUTH-7, issue 3).

Refresh before expiry and after a 401, serialized refreshes, and a revoked refresh token that
asks for a reconnect instead of retrying. HubSpot is the sandbox, the ledger real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from hubspot_ledger.errors import ReconnectRequired
from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.load.records import IntegrationStatus
from hubspot_ledger.tokens import IntegrationTokens

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import ConnectEnv

pytestmark = pytest.mark.integration

PRODUCTS = "/crm/v3/objects/products"


def connected(env: ConnectEnv, organization: str = "Acme Corp") -> int:
    integration_id = env.new_integration(organization)
    env.connect(integration_id)
    env.sandbox.clear_requests()
    return integration_id


def hook_for(integration_id: int) -> HubSpotHook:
    return HubSpotHook(token_source=IntegrationTokens(integration_id))


def in_parallel(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in `count` threads released at the same moment; their results (or errors)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(slot: int) -> None:
        barrier.wait()
        try:
            results[slot] = work()
        except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            results[slot] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# -- R-AUTH-6: a valid token on demand ------------------------------------------------------------

def test_r_auth_6_a_token_near_expiry_is_refreshed_before_use(env: ConnectEnv) -> None:
    integration_id = connected(env)
    old_access, old_refresh = env.tokens(integration_id)
    stored_before = env.row(integration_id)
    env.make_near_expiry(integration_id, seconds_left=240)  # inside the 5-minute margin

    before = dt.datetime.now(dt.UTC)
    token = IntegrationTokens(integration_id).access_token()

    refreshes = env.token_requests()
    assert [(r["grant_type"], r["query"], r["status"]) for r in refreshes] == [
        ("refresh_token", {}, 200)]
    row = env.row(integration_id)
    assert token != old_access and env.tokens(integration_id) == (token, old_refresh)
    assert row["access_token"] != stored_before["access_token"]  # new ciphertext stored
    assert token not in row["access_token"]
    assert row["expires_in"] == 1800 and before <= row["token_created_at"]
    assert row["status"] == "connected"
    assert env.token_works(token)


def test_r_auth_6_a_token_outside_the_margin_is_not_refreshed(env: ConnectEnv) -> None:
    integration_id = connected(env)
    env.make_near_expiry(integration_id, seconds_left=360)  # six minutes left: still fine
    stored = env.row(integration_id)
    token = IntegrationTokens(integration_id).access_token()
    assert token == env.tokens(integration_id)[0]
    assert env.token_requests() == []
    assert env.row(integration_id) == stored


def test_r_auth_6_a_401_mid_sync_refreshes_once_and_retries_the_request(
        env: ConnectEnv) -> None:
    integration_id = connected(env)
    old_access, _ = env.tokens(integration_id)
    assert env.sandbox.expire_access_tokens() >= 1  # HubSpot considers the token dead early

    body = hook_for(integration_id).request("GET", PRODUCTS, params={"limit": 2})

    assert len(body["results"]) == 2
    calls = [(r["endpoint"], r.get("grant_type"), r["status"]) for r in env.sandbox.requests()]
    assert calls == [(f"GET {PRODUCTS}", None, 401),
                     ("POST /oauth/v3/token", "refresh_token", 200),
                     (f"GET {PRODUCTS}", None, 200)]
    new_access, _ = env.tokens(integration_id)
    assert new_access != old_access and env.token_works(new_access)


def test_r_auth_6_concurrent_refreshes_spend_one_refresh_grant(env: ConnectEnv) -> None:
    integration_id = connected(env)
    env.make_near_expiry(integration_id)

    tokens = in_parallel(4, lambda: IntegrationTokens(integration_id).access_token())

    assert all(isinstance(t, str) for t in tokens), tokens
    assert len(env.token_requests("refresh_token")) == 1  # serialized by the row lock
    stored_access, _ = env.tokens(integration_id)
    assert set(tokens) == {stored_access}  # every task got the one stored token
    assert env.token_works(stored_access)


def test_r_auth_6_concurrent_401s_end_with_one_valid_pair(env: ConnectEnv) -> None:
    integration_id = connected(env)
    env.sandbox.expire_access_tokens()

    bodies = in_parallel(3, lambda: hook_for(integration_id).request(
        "GET", PRODUCTS, params={"limit": 1}))

    assert all(isinstance(b, dict) and len(b["results"]) == 1 for b in bodies), bodies
    assert len(env.token_requests("refresh_token")) == 1
    access, refresh = env.tokens(integration_id)
    assert env.token_works(access)
    # The stored refresh token still refreshes: the pair is whole.
    assert HubSpotHook().refresh_tokens(refresh).access_token


# -- R-AUTH-7: a revoked refresh token means reconnect ---------------------------------------------

def test_r_auth_7_revoked_refresh_token_sets_error_and_requires_reconnect(
        env: ConnectEnv) -> None:
    integration_id = connected(env)
    _, refresh = env.tokens(integration_id)
    stored = env.row(integration_id)
    assert env.sandbox.revoke_refresh_tokens() == 1
    env.make_near_expiry(integration_id)

    with pytest.raises(ReconnectRequired, match="reconnect HubSpot") as err:
        IntegrationTokens(integration_id).access_token()

    row = env.row(integration_id)
    assert row["status"] == "error" and "reconnect HubSpot" in row["status_message"]
    assert refresh not in str(err.value) and refresh not in row["status_message"]
    assert row["access_token"] == stored["access_token"]  # nothing half-written
    assert [r["status"] for r in env.token_requests("refresh_token")] == [400]
    # Later runs ask for the reconnect without calling HubSpot again.
    with pytest.raises(ReconnectRequired, match="reconnect HubSpot"):
        IntegrationTokens(integration_id).access_token()
    assert len(env.token_requests()) == 1


def test_r_auth_7_an_uninstalled_app_mid_sync_fails_once_without_a_retry_storm(
        env: ConnectEnv) -> None:
    integration_id = connected(env)
    env.sandbox.revoke_refresh_tokens(access_tokens=True)  # uninstall: every token dies

    with pytest.raises(ReconnectRequired, match="reconnect HubSpot"):
        hook_for(integration_id).request("GET", PRODUCTS, params={"limit": 1})

    calls = [(r["endpoint"], r["status"]) for r in env.sandbox.requests()]
    assert calls == [(f"GET {PRODUCTS}", 401), ("POST /oauth/v3/token", 400)]
    assert env.row(integration_id)["status"] == IntegrationStatus.ERROR


@pytest.mark.e2e
def test_r_auth_7_a_run_with_a_revoked_refresh_token_fails_at_refresh_token_without_retry(
        env: ConnectEnv, books: Callable[..., int], airflow_home: Path) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from hubspot_ledger.run_dag import run_integration_dag

    # A DAG id of its own: the test Airflow home's metadata DB outlives this ledger DB.
    integration_id = books(f"Revoked {uuid.uuid4().hex[:8]}", configured=True)
    env.connect(integration_id)
    env.sandbox.revoke_refresh_tokens()
    env.make_near_expiry(integration_id)
    env.sandbox.clear_requests()

    result = run_integration_dag(integration_id)

    assert result.state == "failed", result.task_states
    assert result.task_states["validate_setup"] == "success"
    assert result.task_states["refresh_token"] == "failed"
    sync_steps = ("sync_invoices", "sync_products", "sync_companies", "sync_deals")
    assert {result.task_states[t] for t in sync_steps} == {"upstream_failed"}  # never ran
    with create_session() as session:
        (try_number,) = session.query(TaskInstance.try_number).filter(
            TaskInstance.dag_id == result.dag_id, TaskInstance.run_id == result.run_id,
            TaskInstance.task_id == "refresh_token").one()
    assert try_number == 1  # failed for good on its first try: no retry
    # One refresh attempt reached HubSpot, and nothing else was asked.
    assert [(r["endpoint"], r["status"]) for r in env.sandbox.requests()] == [
        ("POST /oauth/v3/token", 400)]
    row = env.row(integration_id)
    assert row["status"] == "error" and "reconnect HubSpot" in row["status_message"]
