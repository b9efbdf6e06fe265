"""Token endpoint errors, told apart by cause (issue 10 point 5, issue 13; R-AUTH-5…7).

Only a revoked refresh token is the customer's to fix (status `error`, "reconnect HubSpot").
HubSpot being unavailable (429, 5xx, time-outs, dropped connections) is retried with back-off
and then left to Airflow's task retries; a refused client id/secret is the deployment's, fails
at once and names `hubspot_default`; a 200 without usable tokens fails clearly. In none of
these is anything stored, and the integration stays `connected` with its message untouched.

HubSpot is the sandbox over HTTP (faults injected by rule), the ledger real PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from support import seconds_between

from hubspot_ledger.connect import auth_url, complete_connection
from hubspot_ledger.errors import ConnectFailed, ReconnectRequired
from hubspot_ledger.hooks.hubspot import (
    OAUTH_ATTEMPTS,
    RETRY_AFTER_CAP,
    HubSpotAppRejected,
    HubSpotError,
    HubSpotHook,
    HubSpotMalformedResponse,
    HubSpotTemporaryError,
    retry_after_seconds,
)
from hubspot_ledger.tokens import IntegrationTokens

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import ConnectEnv

pytestmark = pytest.mark.integration

TOKEN = "POST /oauth/v3/token"
PRODUCTS = "/crm/v3/objects/products"
APP_REFUSED = "The HubSpot app's client id/secret in the hubspot_default connection were refused"
# HubSpot may say when to come back; "0" keeps these tests quick, and proves it is honoured.
NOW = {"Retry-After": "0"}


def due_for_refresh(env: ConnectEnv, organization: str = "Acme Corp") -> int:
    """A connected integration whose access token is within the 5-minute margin (R-AUTH-6)."""
    integration_id = env.new_integration(organization)
    env.connect(integration_id)
    env.make_near_expiry(integration_id)
    env.sandbox.clear_requests()
    return integration_id


def refresh(integration_id: int) -> str | Exception:
    """What the refresh_token task body gets: a token, or the exception it raised."""
    try:
        return IntegrationTokens(integration_id).access_token()
    except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
        return exc


def assert_still_connected(env: ConnectEnv, integration_id: int,
                           before: dict[str, Any]) -> None:
    """Nothing stored and nothing flipped: the row is exactly as it was."""
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("connected", None)
    assert row == before


def token_statuses(env: ConnectEnv) -> list[int | None]:
    """Statuses of the token endpoint's calls since the last clear (a faulted call never
    reaches the handler that logs its grant type, so they are not filtered by it)."""
    return [r["status"] for r in env.token_requests()]


def assert_secret_free(env: ConnectEnv, integration_id: int, text: str) -> None:
    access, refresh_token = env.tokens(integration_id)
    for secret in (access, refresh_token, env.sandbox.client_secret):
        assert secret not in text


# -- HubSpot unavailable: retried, then a temporary error; nothing changes -------------------------

def test_r_auth_6_a_429_at_the_token_endpoint_is_retried_after_retry_after(
        env: ConnectEnv) -> None:
    integration_id = due_for_refresh(env)
    _, refresh_token = env.tokens(integration_id)
    env.sandbox.add_fault(endpoint=TOKEN, status=429, first=1, headers={"Retry-After": "2"})

    token = refresh(integration_id)

    assert isinstance(token, str), token
    assert token_statuses(env) == [429, 200]
    refused, retried = env.token_requests()
    # HubSpot's 2 s, not the back-off's first pause (at most 1 s), as HubSpot saw the calls
    # (a lower bound: a slow machine can only make the gap longer).
    assert seconds_between(refused, retried) >= 1.99
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("connected", None)
    assert env.tokens(integration_id) == (token, refresh_token)
    assert env.token_works(token)


def test_r_auth_6_a_429_that_persists_is_a_temporary_error_and_changes_nothing(
        env: ConnectEnv) -> None:
    integration_id = due_for_refresh(env)
    before = env.row(integration_id)
    env.sandbox.add_fault(endpoint=TOKEN, status=429, headers=NOW)

    error = refresh(integration_id)

    assert isinstance(error, HubSpotTemporaryError), error
    assert not isinstance(error, AirflowFailException)  # Airflow's task retries take over
    assert f"after {OAUTH_ATTEMPTS} attempts" in str(error)
    assert "429" in str(error) and "try again later" in str(error)
    assert "stays connected (no reconnect needed)" in str(error)
    assert token_statuses(env) == [429] * OAUTH_ATTEMPTS
    assert_still_connected(env, integration_id, before)
    assert_secret_free(env, integration_id, str(error))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_r_auth_6_a_5xx_at_the_token_endpoint_is_retried_then_a_temporary_error(
        env: ConnectEnv, status: int) -> None:
    integration_id = due_for_refresh(env)
    before = env.row(integration_id)
    env.sandbox.add_fault(endpoint=TOKEN, status=status, headers=NOW)

    error = refresh(integration_id)

    assert isinstance(error, HubSpotTemporaryError), error
    assert f"(last: {status} " in str(error)
    assert token_statuses(env) == [status] * OAUTH_ATTEMPTS
    assert_still_connected(env, integration_id, before)

    env.sandbox.clear_faults()  # HubSpot is back: the next try (Airflow's retry) refreshes
    assert isinstance(refresh(integration_id), str)
    assert env.row(integration_id)["status"] == "connected"


def test_r_auth_6_a_5xx_blip_is_ridden_out_by_the_back_off(env: ConnectEnv) -> None:
    integration_id = due_for_refresh(env)
    env.sandbox.add_fault(endpoint=TOKEN, status=503, first=1)  # no Retry-After: back-off

    token = refresh(integration_id)

    assert isinstance(token, str), token
    assert token_statuses(env) == [503, 200]
    assert env.tokens(integration_id)[0] == token
    assert env.row(integration_id)["status"] == "connected"


def test_r_auth_6_a_connection_reset_is_retried_then_a_temporary_error(
        env: ConnectEnv) -> None:
    integration_id = due_for_refresh(env)
    env.sandbox.add_fault(endpoint=TOKEN, action="reset", first=1)

    token = refresh(integration_id)  # one dropped connection: the retry gets through
    assert isinstance(token, str), token
    assert token_statuses(env) == [None, 200]  # None: no answer at all

    env.make_near_expiry(integration_id)
    before = env.row(integration_id)
    env.sandbox.clear_requests()
    env.sandbox.set_faults([{"endpoint": TOKEN, "action": "reset"}])

    error = refresh(integration_id)  # every attempt dropped

    assert isinstance(error, HubSpotTemporaryError), error
    assert "connection failed (ConnectionError)" in str(error)
    assert token_statuses(env) == [None] * OAUTH_ATTEMPTS
    assert_still_connected(env, integration_id, before)


def test_r_auth_6_a_response_slower_than_the_read_timeout_is_abandoned_and_retried(
        env: ConnectEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_LEDGER_READ_TIMEOUT", "0.5")
    integration_id = due_for_refresh(env)
    env.sandbox.add_fault(endpoint=TOKEN, action="delay", delay=1.5, first=1)

    token = refresh(integration_id)

    assert isinstance(token, str), token
    # The slow answer was given up on after 0.5 s; the sandbox logs it when it lands.
    statuses = token_statuses(env)
    assert statuses.count(200) >= 1 and len(statuses) <= 2
    assert env.tokens(integration_id)[0] == token
    assert env.row(integration_id)["status"] == "connected"

    env.make_near_expiry(integration_id)
    before = env.row(integration_id)
    env.sandbox.set_faults([{"endpoint": TOKEN, "action": "delay", "delay": 1.5}])
    error = refresh(integration_id)
    assert isinstance(error, HubSpotTemporaryError), error
    assert "no answer within 0.5s" in str(error)
    assert_still_connected(env, integration_id, before)


def test_r_auth_6_a_temporary_error_mid_sync_is_not_retried_again_by_the_api_retries(
        env: ConnectEnv) -> None:
    """A 401 mid-sync refreshes; if the token endpoint is down, the call fails at once with
    the temporary error (no retries of retries), and the integration stays connected."""
    integration_id = due_for_refresh(env)
    env.make_near_expiry(integration_id, seconds_left=600)  # not due: the 401 triggers it
    before = env.row(integration_id)
    env.sandbox.expire_access_tokens()
    env.sandbox.add_fault(endpoint=TOKEN, status=503, headers=NOW)
    hook = HubSpotHook(token_source=IntegrationTokens(integration_id))

    with pytest.raises(HubSpotTemporaryError, match="try again later"):
        hook.request("GET", PRODUCTS, params={"limit": 1})

    calls = [(r["endpoint"], r["status"]) for r in env.sandbox.requests()]
    assert calls == [(f"GET {PRODUCTS}", 401)] + [(TOKEN, 503)] * OAUTH_ATTEMPTS
    assert_still_connected(env, integration_id, before)


@pytest.mark.e2e
def test_r_auth_6_a_run_whose_token_endpoint_stays_down_is_retried_by_airflow(
        env: ConnectEnv, books: Callable[..., int], airflow_home: Path) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from hubspot_ledger.dag_factory import DEFAULT_ARGS
    from hubspot_ledger.run_dag import run_integration_dag

    integration_id = books(f"Token down {uuid.uuid4().hex[:8]}", configured=True)
    env.connect(integration_id)
    env.make_near_expiry(integration_id)
    before = env.row(integration_id)
    env.sandbox.add_fault(endpoint=TOKEN, status=503, headers=NOW)
    env.sandbox.clear_requests()

    result = run_integration_dag(integration_id)

    assert result.task_states["refresh_token"] == "failed", result.task_states
    with create_session() as session:
        (try_number,) = session.query(TaskInstance.try_number).filter(
            TaskInstance.dag_id == result.dag_id, TaskInstance.run_id == result.run_id,
            TaskInstance.task_id == "refresh_token").one()
    retries = DEFAULT_ARGS["retries"]
    assert isinstance(retries, int) and retries > 0
    tries = retries + 1
    assert try_number == tries  # Airflow's retries took over after the hook's
    assert token_statuses(env) == [503] * OAUTH_ATTEMPTS * tries
    assert_still_connected(env, integration_id, before)


def test_retry_after_is_honoured_up_to_a_minute() -> None:
    assert retry_after_seconds("0") == 0
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("3600") == RETRY_AFTER_CAP == 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # a date in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# -- the deployment's app refused: fail at once, name hubspot_default, flip nothing ----------------

@pytest.mark.parametrize(("override", "cause"), [
    ({"password": "not-the-app-secret"}, "check the password of the hubspot_default connection"),
    ({"login": "not-the-app-id"}, "HubSpot does not know the client id"),
], ids=["client-secret", "client-id"])
def test_r_auth_1_a_refused_client_id_or_secret_fails_the_run_and_flips_no_integration(
        env: ConnectEnv, override: dict[str, str], cause: str) -> None:
    first, second = due_for_refresh(env, "Acme Corp"), due_for_refresh(env, "Globex")
    before = {i: env.row(i) for i in (first, second)}
    env.use_app(**override)  # an operator mistyped the app's credentials
    env.sandbox.clear_requests()

    errors = [refresh(first), refresh(second)]

    for error in errors:
        assert isinstance(error, HubSpotAppRejected), error
        assert isinstance(error, AirflowFailException)  # Airflow does not retry it
        assert not isinstance(error, ReconnectRequired)
        assert str(error).startswith("Refreshing the HubSpot access token of integration")
        assert APP_REFUSED in str(error) and cause in str(error)
        assert "no reconnect needed" in str(error)
        assert "not-the-app" not in str(error)
    assert_secret_free(env, first, " ".join(map(str, errors)))
    assert token_statuses(env) == [400, 400]  # one attempt each: no retries
    for integration_id in (first, second):  # a wrong secret must not flip every integration
        assert_still_connected(env, integration_id, before[integration_id])

    env.use_app()  # fixed: the same integrations refresh, nobody reconnects
    assert all(isinstance(refresh(i), str) for i in (first, second))


@pytest.mark.e2e
def test_r_auth_1_a_run_with_a_refused_client_secret_fails_at_refresh_token_without_retry(
        env: ConnectEnv, books: Callable[..., int], airflow_home: Path) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from hubspot_ledger.run_dag import run_integration_dag

    integration_id = books(f"Wrong secret {uuid.uuid4().hex[:8]}", configured=True)
    env.connect(integration_id)
    env.make_near_expiry(integration_id)
    before = env.row(integration_id)
    env.use_app(password="not-the-app-secret")
    env.sandbox.clear_requests()

    result = run_integration_dag(integration_id)

    assert result.state == "failed", result.task_states
    assert result.task_states["refresh_token"] == "failed"
    with create_session() as session:
        (try_number,) = session.query(TaskInstance.try_number).filter(
            TaskInstance.dag_id == result.dag_id, TaskInstance.run_id == result.run_id,
            TaskInstance.task_id == "refresh_token").one()
    assert try_number == 1  # failed for good on its first try
    assert [(r["endpoint"], r["status"]) for r in env.sandbox.requests()] == [(TOKEN, 400)]
    assert_still_connected(env, integration_id, before)


# -- a malformed 200: a clear failure, nothing stored ---------------------------------------------

MALFORMED_TOKEN_BODIES = {
    "html": ("<html><body>Service temporarily unavailable</body></html>", "text/html",
             "not JSON (text/html"),
    "truncated-json": ('{"access_token": "CN', "application/json", "not JSON"),
    "empty-object": ("{}", "application/json", "an empty JSON object"),
    "json-list": ('[{"access_token": "x"}]', "application/json", "a JSON list instead of an"),
    "json-null": ("null", "application/json", "a JSON null instead of an object"),
    "no-access-token": (json.dumps({"refresh_token": "na1-x", "expires_in": 1800,
                                    "token_type": "bearer"}), "application/json",
                        "access_token is missing or empty"),
    "no-refresh-token": (json.dumps({"access_token": "CNx", "expires_in": 1800}),
                         "application/json", "refresh_token is missing or empty"),
    "expires-in-soon": (json.dumps({"access_token": "CNx", "refresh_token": "na1-x",
                                    "expires_in": "soon"}), "application/json",
                        "expires_in is missing or not a number of seconds"),
}


@pytest.mark.parametrize("shape", list(MALFORMED_TOKEN_BODIES))
def test_r_auth_6_a_malformed_200_from_the_token_endpoint_fails_the_refresh_storing_nothing(
        env: ConnectEnv, shape: str) -> None:
    raw, content_type, said = MALFORMED_TOKEN_BODIES[shape]
    integration_id = due_for_refresh(env)
    before = env.row(integration_id)
    env.sandbox.add_fault(endpoint=TOKEN, action="raw", raw=raw, content_type=content_type)

    error = refresh(integration_id)

    assert isinstance(error, HubSpotMalformedResponse), error
    assert "HubSpot's token endpoint answered 200" in str(error) and said in str(error)
    assert "Nothing was stored" in str(error)
    assert "CNx" not in str(error) and "na1-x" not in str(error)  # the body is never quoted
    assert token_statuses(env) == [200]  # a 200 is an answer: not retried by the hook
    assert_still_connected(env, integration_id, before)


@pytest.mark.parametrize("shape", ["html", "empty-object", "json-list", "expires-in-soon"])
def test_r_auth_5_a_malformed_200_at_connect_sets_error_and_stores_nothing(
        env: ConnectEnv, shape: str) -> None:
    raw, content_type, said = MALFORMED_TOKEN_BODIES[shape]
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    env.sandbox.add_fault(endpoint=TOKEN, action="raw", raw=raw, content_type=content_type)

    with pytest.raises(ConnectFailed) as err:
        complete_connection(code, state)

    assert err.value.http_status == 502
    assert said in str(err.value)
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("error", str(err.value))
    assert (row["access_token"], row["refresh_token"], row["remote_id"]) == (None, None, None)


@pytest.mark.parametrize(("raw", "said"), [
    ("<html>maintenance</html>", "not JSON"),
    ("[]", "a JSON list instead of an object"),
    (json.dumps({"companyCurrency": "USD", "uiDomain": "app.hubspot.com"}),
     "without a usable portal id"),
    (json.dumps({"portalId": "sixty-two", "companyCurrency": "USD"}),
     "without a usable portal id"),
    (json.dumps({"portalId": 62515, "companyCurrency": "US Dollar"}),
     "not an ISO 4217 code"),
], ids=["html", "list", "no-portal", "portal-not-a-number", "currency-not-iso"])
def test_r_auth_5_a_malformed_200_from_account_details_sets_error_and_stores_nothing(
        env: ConnectEnv, raw: str, said: str) -> None:
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    env.sandbox.add_fault(endpoint="GET /account-info/v3/details", action="raw", raw=raw)

    with pytest.raises(ConnectFailed, match="account details") as err:
        complete_connection(code, state)

    assert err.value.http_status == 502 and said in str(err.value)
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("error", str(err.value))
    assert (row["access_token"], row["scope"], row["remote_id"]) == (None, None, None)


# -- the one cause that is the customer's: a revoked refresh token ---------------------------------

def test_r_auth_7_only_a_revoked_refresh_token_sets_error_and_asks_for_a_reconnect(
        env: ConnectEnv) -> None:
    integration_id = due_for_refresh(env)
    before = env.row(integration_id)
    env.sandbox.revoke_refresh_tokens()

    error = refresh(integration_id)

    assert isinstance(error, ReconnectRequired), error
    assert "revoked or has expired: reconnect HubSpot" in str(error)
    assert token_statuses(env) == [400]  # not retried: only reconnecting helps
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("error", str(error))
    assert (row["access_token"], row["refresh_token"]) == (before["access_token"],
                                                           before["refresh_token"])


def test_r_auth_7_invalid_grant_without_hubspots_legacy_status_also_means_reconnect(
        env: ConnectEnv) -> None:
    """The RFC 6749 field alone is enough (HubSpot sends both; a proxy may keep only one)."""
    integration_id = due_for_refresh(env)
    env.sandbox.add_fault(endpoint=TOKEN, status=400, body={
        "error": "invalid_grant", "error_description": "refresh token is invalid"})

    error = refresh(integration_id)

    assert isinstance(error, ReconnectRequired), error
    assert env.row(integration_id)["status"] == "error"


def test_another_400_from_the_token_endpoint_fails_without_flipping_the_status(
        env: ConnectEnv) -> None:
    """A refusal that is neither a revoked token nor the app's credentials says what HubSpot
    said; the customer is not asked to reconnect for it."""
    integration_id = due_for_refresh(env)
    before = env.row(integration_id)
    env.sandbox.add_fault(endpoint=TOKEN, status=400, body={
        "error": "invalid_request", "status": "BAD_REQUEST",
        "error_description": "missing or invalid parameter"})

    error = refresh(integration_id)

    assert isinstance(error, HubSpotError) and not isinstance(error, ReconnectRequired)
    assert "BAD_REQUEST" in str(error) and "missing or invalid parameter" in str(error)
    assert_still_connected(env, integration_id, before)
