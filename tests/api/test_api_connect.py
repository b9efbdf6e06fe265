"""Connecting a portal through the plugin's endpoints on a real api-server: the consent URL,
HubSpot's (the sandbox's) consent redirect, and the OAuth callback, protected by its state."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus
from hubspot_ledger.oauth_state import sign_state

from .helpers import AirflowApi

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TOKEN_ENDPOINT = "POST /oauth/v3/token"


def consent_url(api: AirflowApi, integration_id: int) -> str:
    response = api.call("GET", "/auth/", params={"integration_id": integration_id})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"url"}
    return str(response.json()["url"])


def deliver(api: AirflowApi, how: str, code: str, state: str) -> requests.Response:
    """The callback as HubSpot's redirect (GET) or a front end forwarding it (form, JSON);
    never with an Airflow user."""
    params = {"code": code, "state": state}
    if how == "get":
        return api.call("GET", "/oauth-callback/", user=None, params=params)
    if how == "form":
        return api.call("POST", "/oauth-callback/", user=None, data=params)
    return api.call("POST", "/oauth-callback/", user=None, json=params)


def status_of(integration_id: int) -> IntegrationStatus:
    return LedgerHook().integrations.get(integration_id).status


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_full_connect_flow_through_the_consent_redirect(
        airflow_api: AirflowApi, books: Callable[..., int], how: str) -> None:
    sandbox = airflow_api.sandbox
    integration_id = books()
    url = consent_url(airflow_api, integration_id)
    query = parse_qs(urlparse(url).query)
    assert url.startswith(f"{sandbox.url}/oauth/authorize?")
    assert query["client_id"] == [sandbox.client_id]
    assert query["redirect_uri"] == [sandbox.redirect_uri]
    assert sandbox.client_secret not in url

    code, state = airflow_api.consent(url)
    response = deliver(airflow_api, how, code, state)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "connected", "integration_id": integration_id,
                               "portal_id": str(sandbox.portal_id), "currency": "USD"}
    for secret in (code, state, sandbox.client_secret):
        assert secret not in response.text
    integration = LedgerHook().integrations.get(integration_id)
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.remote_id == str(sandbox.portal_id)
    assert integration.access_token and airflow_api.cipher.decrypt(integration.access_token)


def test_a_replayed_callback_is_refused(airflow_api: AirflowApi,
                                        books: Callable[..., int]) -> None:
    integration_id = books()
    code, state = airflow_api.consent(consent_url(airflow_api, integration_id))
    assert deliver(airflow_api, "json", code, state).status_code == 200
    replay = deliver(airflow_api, "json", code, state)
    assert replay.status_code == 400
    assert "already used" in replay.json()["detail"]
    assert status_of(integration_id) == IntegrationStatus.CONNECTED


def _retarget(state: str, integration_id: int) -> str:
    """The state with its payload rewritten to name another integration, signature kept."""
    payload, signature = state.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["i"] = integration_id
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


def test_a_tampered_state_is_refused_and_nothing_changes(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    mine = books("Mine Org")
    victim = books("Victim Org")
    code, state = airflow_api.consent(consent_url(airflow_api, mine))
    since = airflow_api.sandbox.last_seq()

    response = deliver(airflow_api, "json", code, _retarget(state, victim))

    assert response.status_code == 400
    assert response.json() == {"detail": "OAuth state signature is invalid; start the "
                                         "connection again"}
    assert status_of(victim) == IntegrationStatus.DISCONNECTED
    assert status_of(mine) == IntegrationStatus.DISCONNECTED
    assert airflow_api.sandbox.requests(since=since, endpoint=TOKEN_ENDPOINT) == []


def test_an_expired_state_is_refused(airflow_api: AirflowApi,
                                     books: Callable[..., int]) -> None:
    integration_id = books()
    code, _ = airflow_api.consent(consent_url(airflow_api, integration_id))
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    expired = sign_state(integration_id, airflow_api.cipher.signing_key, now=an_hour_ago)

    response = deliver(airflow_api, "form", code, expired)

    assert response.status_code == 400
    assert response.json()["detail"] == "OAuth state has expired; start the connection again"
    assert status_of(integration_id) == IntegrationStatus.DISCONNECTED


def test_a_code_hubspot_refuses_leaves_the_integration_in_error_saying_what_to_do(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = books()
    _, state = airflow_api.consent(consent_url(airflow_api, integration_id))

    response = deliver(airflow_api, "get", "not-a-code-hubspot-issued", state)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "authorization code is invalid or was already used" in detail
    integration = LedgerHook().integrations.get(integration_id)
    assert integration.status == IntegrationStatus.ERROR
    assert integration.status_message == detail
    assert integration.access_token is None


@pytest.mark.parametrize(("params", "detail"), [
    ({"error": "access_denied", "error_description": "The user declined"},
     "HubSpot did not grant access (The user declined); start the connection again"),
    ({"state": "x"}, "The OAuth callback carries no code"),
    ({"code": "x"}, "OAuth state is missing or malformed; start the connection again"),
])
def test_incomplete_callbacks_are_refused(airflow_api: AirflowApi, params: dict,
                                          detail: str) -> None:
    response = airflow_api.call("GET", "/oauth-callback/", user=None, params=params)
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


def test_a_callback_body_that_is_not_an_object_is_refused(airflow_api: AirflowApi) -> None:
    response = airflow_api.call("POST", "/oauth-callback/", user=None, json=["code", "state"])
    assert response.status_code == 400
    assert "JSON object" in response.json()["detail"]


def test_the_consent_url_of_an_unknown_integration_is_404(airflow_api: AirflowApi,
                                                         books: Callable[..., int]) -> None:
    books()
    response = airflow_api.call("GET", "/auth/", params={"integration_id": 4040})
    assert response.status_code == 404
    assert response.json() == {"detail": "Integration 4040 does not exist"}


def test_the_consent_url_needs_an_integration(airflow_api: AirflowApi) -> None:
    response = airflow_api.call("GET", "/auth/")
    assert response.status_code == 422
    assert response.json() == {"detail": "Invalid request: query.integration_id: Field required"}


# -- issue 13: one portal per integration, failures by cause, never a bare 500 ---------------------

@pytest.fixture
def fresh_sandbox(airflow_api: AirflowApi) -> Iterator[AirflowApi]:
    """The session's sandbox without faults or extra portals (they would leak into others)."""
    airflow_api.sandbox.reset()
    yield airflow_api
    airflow_api.sandbox.reset()


def connected_via_api(api: AirflowApi, integration_id: int) -> None:
    code, state = api.consent(consent_url(api, integration_id))
    response = deliver(api, "json", code, state)
    assert response.status_code == 200, response.text


def test_a_consent_for_another_portal_is_409_and_changes_nothing(
        fresh_sandbox: AirflowApi, books: Callable[..., int]) -> None:
    api = fresh_sandbox
    integration_id = books()
    connected_via_api(api, integration_id)
    before = LedgerHook().integrations.get(integration_id)
    api.sandbox.add_portal(portal_id=99_999)
    url = consent_url(api, integration_id).replace("/oauth/authorize?",
                                                   "/oauth/99999/authorize?")
    code, state = api.consent(url)

    response = deliver(api, "get", code, state)

    assert response.status_code == 409
    assert response.json() == {"detail": (
        f"Not connected: this integration is connected to portal {api.sandbox.portal_id}; "
        "create a new integration for portal 99999 (nothing was changed)")}
    assert LedgerHook().integrations.get(integration_id) == before


@pytest.mark.parametrize(("fault", "status_code", "said"), [
    ({"endpoint": TOKEN_ENDPOINT, "action": "raw", "raw": "<html>proxy</html>",
      "content_type": "text/html"}, 502, "answered 200 with a body that is not JSON"),
    ({"endpoint": TOKEN_ENDPOINT, "status": 503, "headers": {"Retry-After": "0"}}, 503,
     "try again later"),
    ({"endpoint": "GET /account-info/v3/details", "action": "raw", "raw": "[]"}, 502,
     "a JSON list instead of an object"),
], ids=["malformed-token-response", "hubspot-down", "malformed-account-details"])
def test_hubspot_failing_mid_connect_is_a_json_answer_by_cause(
        fresh_sandbox: AirflowApi, books: Callable[..., int], fault: dict, status_code: int,
        said: str) -> None:
    api = fresh_sandbox
    fresh, working = books("Fresh Org"), books("Working Org")
    connected_via_api(api, working)
    before = LedgerHook().integrations.get(working)
    attempts = {i: api.consent(consent_url(api, i)) for i in (fresh, working)}
    api.sandbox.add_fault(**fault)

    for code, state in attempts.values():
        response = deliver(api, "json", code, state)
        assert response.status_code == status_code, response.text
        assert set(response.json()) == {"detail"} and said in response.json()["detail"]

    # R-AUTH-5 for the one not working yet; the working one keeps its connection.
    integration = LedgerHook().integrations.get(fresh)
    assert integration.status == IntegrationStatus.ERROR and integration.access_token is None
    assert said in (integration.status_message or "")
    assert LedgerHook().integrations.get(working) == before
