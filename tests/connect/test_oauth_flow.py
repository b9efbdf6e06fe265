"""Connecting a portal through the OAuth authorization-code flow (R-AUTH-1…5, issue 3).

The consent URL is followed over HTTP to the sandbox's authorize endpoint; the code and state
come back on the redirect, exactly as HubSpot hands them to the callback.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from support import hubspot_paths

from hubspot_ledger.connect import auth_url, complete_connection
from hubspot_ledger.errors import ConnectFailed, InvalidInput
from hubspot_ledger.hooks.hubspot import DEFAULT_SCOPES
from hubspot_ledger.oauth_state import STATE_TTL, sign_state, verify_state

if TYPE_CHECKING:
    from conftest import ConnectEnv

pytestmark = pytest.mark.integration

TOKEN_COLUMNS = ("access_token", "refresh_token", "expires_in", "scope", "token_created_at",
                 "remote_id", "currency")


def assert_nothing_stored(row: dict[str, Any]) -> None:
    stored = {c: row[c] for c in TOKEN_COLUMNS if row[c] is not None}
    assert stored == {}, f"half-stored connection: {sorted(stored)}"


def assert_error(env: ConnectEnv, integration_id: int, fix: str) -> None:
    """R-AUTH-5: status error, a message saying what to fix, nothing stored."""
    row = env.row(integration_id)
    assert row["status"] == "error"
    assert fix in row["status_message"]
    assert_nothing_stored(row)


def assert_untouched(env: ConnectEnv, integration_id: int) -> None:
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("disconnected", None)
    assert_nothing_stored(row)


# -- the consent URL and the happy path ----------------------------------------------------------

def test_r_auth_2_consent_url_is_the_deployments_app_with_a_state_bound_to_the_integration(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    url = urlparse(auth_url(integration_id))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{env.sandbox.url}/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == env.sandbox.client_id
    assert query["redirect_uri"] == env.sandbox.redirect_uri
    assert query["scope"].split() == list(DEFAULT_SCOPES)
    assert "client_secret" not in query
    claims = verify_state(query["state"], env.cipher.signing_key)
    assert claims.integration_id == integration_id
    assert dt.timedelta(0) < claims.expires_at - dt.datetime.now(dt.UTC) <= STATE_TTL


def test_r_auth_3_code_exchange_through_the_consent_redirect_stores_encrypted_tokens(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    before = dt.datetime.now(dt.UTC)
    code, state = env.consent(auth_url(integration_id))
    integration = complete_connection(code, state)

    # R-AUTH-3, R-AUTH-4: what the ledger holds.
    row = env.row(integration_id)
    assert integration.status == row["status"] == "connected"
    assert row["status_message"] is None
    assert row["remote_id"] == str(env.sandbox.portal_id)
    assert row["currency"] == "USD" and row["ui_domain"] == "app.hubspot.com"
    assert row["scope"].split() == list(DEFAULT_SCOPES)
    assert row["expires_in"] == 1800  # the seconds HubSpot returned
    assert before <= row["token_created_at"] <= dt.datetime.now(dt.UTC)

    # The token endpoint of the deployment's API version (2026-03 by default, v3 with
    # api_version v3), every parameter in the form body: the query string is empty (the
    # sandbox refuses such parameters there, and answers 400 when one is missing from the
    # body). The granted scopes come from HubSpot's introspection endpoint (issue 13).
    endpoints = [r["endpoint"] for r in env.sandbox.requests()]
    assert endpoints == ["GET /oauth/authorize", "POST /oauth/v3/token",
                         "GET /account-info/v3/details", "POST /oauth/v3/token/introspect"]
    paths = hubspot_paths()
    assert [r["path"] for r in env.sandbox.requests()][1:] == [
        paths.token, paths.account_details, paths.introspect]
    exchange = env.token_requests()
    assert [(r["path"], r["grant_type"], r["query"], r["status"]) for r in exchange] == [
        (paths.token, "authorization_code", {}, 200)]

    access, refresh = env.tokens(integration_id)
    assert {access, refresh} <= env.issued_tokens()  # what the sandbox handed out
    assert access not in row["access_token"] and refresh not in row["refresh_token"]
    assert env.token_works(access)


def test_r_auth_4_portal_id_currency_and_ui_domain_come_from_the_consenting_portal(
        env: ConnectEnv) -> None:
    eu = env.sandbox.add_portal(portal_id=7_700_123, currency="EUR",
                                ui_domain="app-eu1.hubspot.com")
    # The user picks the EU account on HubSpot's consent page.
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id).replace(
        "/oauth/authorize?", f"/oauth/{eu['portal_id']}/authorize?"))
    complete_connection(code, state)
    row = env.row(integration_id)
    assert (row["status"], row["remote_id"], row["currency"], row["ui_domain"]) == (
        "connected", "7700123", "EUR", "app-eu1.hubspot.com")


# -- R-AUTH-5: failures after consent set status error, say what to fix, store nothing ----------

def test_r_auth_5_redirect_uri_mismatch_sets_error_and_stores_nothing(env: ConnectEnv) -> None:
    other_uri = "https://ledger.example.com/hubspot/oauth-callback"
    env.sandbox.update_config(redirect_uris=[env.sandbox.redirect_uri, other_uri])
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    env.use_app(redirect_uri=other_uri)  # the deployment's redirect URI changed meanwhile
    with pytest.raises(ConnectFailed, match="redirect URI"):
        complete_connection(code, state)
    assert_error(env, integration_id, "the redirect_uri of the hubspot_default connection must "
                                      "match the app's redirect URL exactly")
    assert [r["status"] for r in env.token_requests()] == [400]


def test_r_auth_5_wrong_client_secret_sets_error_then_reconnecting_works(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    env.use_app(password="not-the-app-secret")
    code, state = env.consent(auth_url(integration_id))
    with pytest.raises(ConnectFailed, match="client secret") as err:
        complete_connection(code, state)
    assert_error(env, integration_id, "check the password of the hubspot_default connection")
    assert "not-the-app-secret" not in str(err.value) + env.row(integration_id)["status_message"]

    env.use_app()  # the operator fixes the secret; the user repeats the flow
    integration = env.connect(integration_id)
    assert integration.status == "connected" and integration.status_message is None
    assert env.token_works(env.tokens(integration_id)[0])


def test_r_auth_5_reused_code_sets_error_and_stores_nothing(env: ConnectEnv) -> None:
    first, second = env.new_integration("Acme Corp"), env.new_integration("Globex")
    code, state = env.consent(auth_url(first))
    complete_connection(code, state)
    stored_first = env.row(first)

    _, state_second = env.consent(auth_url(second))
    with pytest.raises(ConnectFailed, match="invalid or was already used"):
        complete_connection(code, state_second)  # the code was spent by the first exchange
    assert_error(env, second, "connect HubSpot again")
    assert env.row(first) == stored_first
    assert [r["status"] for r in env.token_requests("authorization_code")] == [200, 400]


def test_r_auth_5_missing_scopes_set_error_and_store_nothing(env: ConnectEnv) -> None:
    granted = [s for s in DEFAULT_SCOPES if s != "crm.objects.invoices.read"]
    # The app on HubSpot's side lost a scope: the user can only consent to the others.
    env.sandbox.update_config(scopes=granted)
    integration_id = env.new_integration()
    state = sign_state(integration_id, env.cipher.signing_key)
    code = env.sandbox.authorize(scopes=granted, state=state)
    with pytest.raises(ConnectFailed, match="crm.objects.invoices.read"):
        complete_connection(code, state)
    assert_error(env, integration_id,
                 "HubSpot did not grant the scopes crm.objects.invoices.read")


def test_r_auth_5_denied_consent_brings_no_code_and_stores_nothing(env: ConnectEnv) -> None:
    env.sandbox.update_config(consent="deny")  # the user clicks "Cancel" on HubSpot's page
    integration_id = env.new_integration()
    response = requests.get(auth_url(integration_id), allow_redirects=False, timeout=10)
    query = {k: v[0] for k, v in parse_qs(urlparse(response.headers["Location"]).query).items()}
    assert response.status_code == 302 and query["error"] == "access_denied"
    with pytest.raises(InvalidInput, match="carries no code"):
        complete_connection(query.get("code", ""), query["state"])
    assert_untouched(env, integration_id)
    assert env.token_requests() == []


# Retry-After: 0 keeps the hook's retries (issue 13) quick; they are tested on their own in
# test_token_endpoint_errors.py.
@pytest.mark.parametrize(("fault", "message"), [
    ({"endpoint": "POST /oauth/v3/token", "status": 503}, "try again later"),
    ({"endpoint": "GET /account-info/v3/details", "status": 500},
     f"HubSpot did not answer GET {hubspot_paths().account_details} after 4 attempts"),
], ids=["token-endpoint-down", "account-details-fail-after-exchange"])
def test_r_auth_5_hubspot_failing_mid_connect_sets_error_and_stores_nothing(
        env: ConnectEnv, fault: dict[str, Any], message: str) -> None:
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    env.sandbox.add_fault(**fault, headers={"Retry-After": "0"})
    with pytest.raises(ConnectFailed, match=message) as err:
        complete_connection(code, state)
    assert err.value.http_status == 503  # HubSpot unavailable: try again later
    assert_error(env, integration_id, message)


# -- the state: signed, expiring, single-use, bound to one integration --------------------------

def _tamper_signature(state: str) -> str:
    payload, _, signature = state.partition(".")
    return f"{payload}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"


@pytest.mark.parametrize("tamper", [
    _tamper_signature,
    lambda state: state.partition(".")[0],
    lambda state: "not-a-state",
    lambda state: "",
], ids=["signature-changed", "signature-dropped", "garbage", "missing"])
def test_r_auth_5_tampered_state_is_refused_before_any_exchange(
        env: ConnectEnv, tamper: Any) -> None:
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    with pytest.raises(InvalidInput, match="OAuth state .*start the connection again"):
        complete_connection(code, tamper(state))
    assert_untouched(env, integration_id)
    assert env.token_requests() == []  # the code was not even spent


def test_r_auth_5_state_signed_with_another_deployments_key_is_refused(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    code, _ = env.consent(auth_url(integration_id))
    forged = sign_state(integration_id, b"\x00" * 32)
    with pytest.raises(InvalidInput, match="signature is invalid"):
        complete_connection(code, forged)
    assert_untouched(env, integration_id)
    assert env.token_requests() == []


def test_r_auth_5_expired_state_is_refused_and_the_code_stays_unspent(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    signed_at = dt.datetime.now(dt.UTC) - STATE_TTL - dt.timedelta(seconds=1)
    expired = sign_state(integration_id, env.cipher.signing_key, now=signed_at)
    code = env.sandbox.authorize(state=expired)
    with pytest.raises(InvalidInput, match="OAuth state has expired; start the connection "
                                           "again"):
        complete_connection(code, expired)
    assert_untouched(env, integration_id)
    assert env.token_requests() == []
    # Starting again (a fresh state) works, with the very same code.
    complete_connection(code, sign_state(integration_id, env.cipher.signing_key))
    assert env.row(integration_id)["status"] == "connected"


def test_r_auth_5_a_replayed_state_is_refused(env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    complete_connection(code, state)
    connected = env.row(integration_id)

    fresh_code = env.sandbox.authorize(state=state)  # a replay with a valid code
    with pytest.raises(InvalidInput, match="already used"):
        complete_connection(fresh_code, state)
    assert env.row(integration_id) == connected  # the first connection's tokens stay
    assert len(env.token_requests()) == 1  # the replay never reached HubSpot


def test_r_auth_5_state_of_integration_a_cannot_connect_integration_b(
        env: ConnectEnv) -> None:
    a, b = env.new_integration("Acme Corp"), env.new_integration("Globex")
    code, state_a = env.consent(auth_url(a))
    payload_a, _, signature_a = state_a.partition(".")
    # Re-point A's state at B, keeping A's signature.
    claims = json.loads(base64.urlsafe_b64decode(payload_a + "=" * (-len(payload_a) % 4)))
    claims["i"] = b
    payload_b = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()
                                         ).rstrip(b"=").decode()
    with pytest.raises(InvalidInput, match="signature is invalid"):
        complete_connection(code, f"{payload_b}.{signature_a}")
    assert_untouched(env, a)
    assert_untouched(env, b)

    # A's own state connects A, and only A.
    complete_connection(code, state_a)
    assert env.row(a)["status"] == "connected"
    assert_untouched(env, b)
