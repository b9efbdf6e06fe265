"""OAuth: consent redirect, the token endpoints' success and error bodies, token metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = pytest.mark.integration


def token_call(sb: SandboxServer, version: str = "v3", params: dict[str, str] | None = None,
               **form: str) -> requests.Response:
    return requests.post(f"{sb.url}/oauth/{version}/token", data=form, params=params,
                         timeout=10)


def exchange(sb: SandboxServer, code: str, **overrides: str) -> requests.Response:
    form = {"grant_type": "authorization_code", "client_id": sb.client_id,
            "client_secret": sb.client_secret, "code": code, "redirect_uri": sb.redirect_uri,
            **overrides}
    return requests.post(f"{sb.url}/oauth/v3/token", data=form, timeout=10)


def refresh(sb: SandboxServer, refresh_token: str, version: str = "v3") -> requests.Response:
    return token_call(sb, version, grant_type="refresh_token", client_id=sb.client_id,
                      client_secret=sb.client_secret, refresh_token=refresh_token)


def assert_oauth_error(response: requests.Response, error: str, status: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["status"] == status
    assert body["error_description"] and body["message"] == body["error_description"]
    assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    return body


def test_full_flow_through_the_consent_redirect(sb: SandboxServer) -> None:
    consent = requests.get(sb.authorize_url(state="opaque-state-1"), allow_redirects=False,
                           timeout=10)
    assert consent.status_code == 302
    location = urlparse(consent.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == sb.redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == ["opaque-state-1"]
    response = exchange(sb, query["code"][0])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["token_use"] == "access_token"
    assert body["expires_in"] == 1800 and body["hub_id"] == sb.portal_id
    assert set(body["scopes"]) == set(sb.scopes)
    assert body["refresh_token"].startswith("na1-") and len(body["access_token"]) <= 512
    details = requests.get(f"{sb.url}/account-info/v3/details", timeout=10,
                           headers={"Authorization": f"Bearer {body['access_token']}"})
    assert details.status_code == 200 and details.json()["portalId"] == sb.portal_id


def test_refresh_returns_a_new_access_token_and_the_same_refresh_token(sb: SandboxServer
                                                                       ) -> None:
    tokens = sb.connect()
    for version in ("v1", "v3", "2026-03"):
        again = refresh(sb, tokens["refresh_token"], version)
        assert again.status_code == 200, again.text
        assert again.json()["refresh_token"] == tokens["refresh_token"]
        assert again.json()["access_token"] != tokens["access_token"]


def test_redirect_uri_mismatch_at_exchange(sb: SandboxServer) -> None:
    code = sb.authorize()
    assert_oauth_error(exchange(sb, code, redirect_uri="http://localhost:9999/elsewhere"),
                       "invalid_grant", "BAD_REDIRECT_URI")


def test_wrong_secret_and_wrong_client_id(sb: SandboxServer) -> None:
    code = sb.authorize()
    assert_oauth_error(exchange(sb, code, client_secret="not-the-secret"),
                       "invalid_client", "BAD_CLIENT_SECRET")
    assert_oauth_error(exchange(sb, code, client_id="someone-else"),
                       "invalid_client", "BAD_CLIENT_ID")
    assert exchange(sb, code).status_code == 200  # the failed attempts did not use the code


def test_reused_and_unknown_codes(sb: SandboxServer) -> None:
    code = sb.authorize()
    assert exchange(sb, code).status_code == 200
    body = assert_oauth_error(exchange(sb, code), "invalid_grant", "BAD_AUTH_CODE")
    assert body["message"] == "missing or unknown auth code"
    assert_oauth_error(exchange(sb, "na1-0000-0000-0000-0000-000000000000"), "invalid_grant",
                       "BAD_AUTH_CODE")


def test_expired_code(sb: SandboxServer) -> None:
    sb.update_config(code_ttl=0)
    assert_oauth_error(exchange(sb, sb.authorize()), "invalid_grant", "EXPIRED_AUTH_CODE")


def test_revoked_refresh_token(sb: SandboxServer) -> None:
    tokens = sb.connect()
    deleted = requests.delete(f"{sb.url}/oauth/v1/refresh-tokens/{tokens['refresh_token']}",
                              timeout=10)
    assert deleted.status_code == 204
    body = assert_oauth_error(refresh(sb, tokens["refresh_token"]), "invalid_grant",
                              "BAD_REFRESH_TOKEN")
    assert body["error_description"] == "refresh token is invalid, expired or revoked"
    # Deleting the refresh token leaves its access tokens alive, as HubSpot documents.
    alive = requests.get(f"{sb.url}/account-info/v3/details", timeout=10,
                         headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert alive.status_code == 200
    other = sb.connect()
    assert sb.revoke_refresh_tokens() == 1
    assert_oauth_error(refresh(sb, other["refresh_token"]), "invalid_grant",
                       "BAD_REFRESH_TOKEN")
    assert_oauth_error(refresh(sb, "na1-unknown"), "invalid_grant", "BAD_REFRESH_TOKEN")


def test_missing_parameters_and_bad_grant_type(sb: SandboxServer) -> None:
    assert_oauth_error(token_call(sb, client_id=sb.client_id), "invalid_request", "BAD_REQUEST")
    assert_oauth_error(token_call(sb, grant_type="authorization_code", client_id=sb.client_id,
                                  client_secret=sb.client_secret, code="x"),
                       "invalid_request", "BAD_REQUEST")
    assert_oauth_error(token_call(sb, grant_type="password"), "unsupported_grant_type",
                       "BAD_GRANT_TYPE")


def test_v3_and_2026_03_require_the_body_v1_takes_the_query(sb: SandboxServer) -> None:
    tokens = sb.connect()
    secret = {"client_secret": sb.client_secret}
    for version in ("v3", "2026-03"):
        response = token_call(sb, version, params=secret, grant_type="refresh_token",
                              client_id=sb.client_id, refresh_token=tokens["refresh_token"])
        assert_oauth_error(response, "invalid_request", "BAD_REQUEST")
        assert "client_secret" in response.json()["error_description"]
    legacy = token_call(sb, "v1", params=secret, grant_type="refresh_token",
                        client_id=sb.client_id, refresh_token=tokens["refresh_token"])
    assert legacy.status_code == 200


def consent_page(sb: SandboxServer, **overrides: Any) -> requests.Response:
    return requests.get(sb.authorize_url(**overrides), allow_redirects=False, timeout=10)


def test_consent_errors_show_a_page_and_never_redirect(sb: SandboxServer) -> None:
    cases = {
        "client_id": consent_page(sb, client_id="unknown-app"),
        "redirect URL": consent_page(sb, redirect_uri="https://evil.example.com/cb"),
        "scopes": consent_page(sb, scopes=["oauth", "crm.objects.deals.read"]),
        "account": consent_page(sb, portal_id=999),
    }
    for phrase, response in cases.items():
        assert response.status_code == 400, phrase
        assert "Location" not in response.headers
        assert "Authorization failed" in response.text and phrase in response.text


def test_user_denies(sb: SandboxServer) -> None:
    response = consent_page(sb, state="s-9", decision="deny")
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["error_description"]
    assert query["state"] == ["s-9"] and "code" not in query
    sb.update_config(consent="deny")  # also for consent URLs the caller builds itself
    assert "error=access_denied" in consent_page(sb).headers["Location"]


def test_optional_scopes_are_granted(sb: SandboxServer) -> None:
    code = sb.authorize(optional_scopes=["crm.objects.contacts.read"])
    assert "crm.objects.contacts.read" in exchange(sb, code).json()["scopes"]


def test_tokens_are_bound_to_the_consenting_portal(sb: SandboxServer) -> None:
    other = sb.add_portal(portal_id=7001, currency="EUR", ui_domain="app-eu1.hubspot.com")
    tokens = sb.connect(portal_id=other["portal_id"])
    assert tokens["hub_id"] == 7001
    details = requests.get(f"{sb.url}/account-info/2026-03/details", timeout=10,
                           headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert details["portalId"] == 7001 and details["companyCurrency"] == "EUR"
    assert details["uiDomain"] == "app-eu1.hubspot.com"
    required = {"portalId", "accountType", "timeZone", "companyCurrency", "additionalCurrencies",
                "utcOffset", "utcOffsetMilliseconds", "uiDomain", "dataHostingLocation"}
    assert required <= set(details)


def test_token_metadata_introspection_and_revocation(sb: SandboxServer) -> None:
    tokens = sb.connect()
    access, refresh_token = tokens["access_token"], tokens["refresh_token"]
    info = requests.get(f"{sb.url}/oauth/v1/access-tokens/{access}", timeout=10).json()
    assert info["hub_id"] == sb.portal_id and info["token_type"] == "access"
    assert 0 < info["expires_in"] <= 1800 and info["app_id"] and info["user_id"]
    info = requests.get(f"{sb.url}/oauth/v1/refresh-tokens/{refresh_token}", timeout=10).json()
    assert info["client_id"] == sb.client_id and info["token_type"] == "refresh"
    creds = {"client_id": sb.client_id, "client_secret": sb.client_secret}
    url = f"{sb.url}/oauth/v3/token/introspect"
    by_spec = requests.post(url, data={**creds, "token": access}, timeout=10).json()
    by_guide = requests.post(url, data={**creds, "token_type_hint": "refresh_token",
                                        "refresh_token": refresh_token}, timeout=10).json()
    assert by_spec["active"] and by_spec["token_use"] == "access_token"
    assert by_guide["active"] and by_guide["token_use"] == "refresh_token"
    assert requests.post(url, data={**creds, "token": "nope"}, timeout=10).json() == \
        {"active": False}
    revoked = requests.post(f"{sb.url}/oauth/v3/token/revoke",
                            data={**creds, "token": refresh_token}, timeout=10)
    assert revoked.status_code == 200
    assert requests.post(url, data={**creds, "token": refresh_token}, timeout=10).json() == \
        {"active": False}
    assert_oauth_error(requests.post(url, data={**creds, "client_secret": "x", "token": access},
                                     timeout=10), "invalid_client", "BAD_CLIENT_SECRET")


def test_token_endpoint_calls_are_logged_without_secrets(sb: SandboxServer) -> None:
    tokens = sb.connect()
    requests.get(f"{sb.url}/oauth/v1/access-tokens/{tokens['access_token']}", timeout=10)
    log = sb.requests()
    text = repr(log)
    assert tokens["access_token"] not in text and tokens["refresh_token"] not in text
    assert sb.client_secret not in text
    endpoints = [e["endpoint"] for e in log]
    assert endpoints == ["GET /oauth/authorize", "POST /oauth/v3/token",
                         "GET /oauth/v1/access-tokens/{token}"]
    assert log[1]["grant_type"] == "authorization_code"
    assert log[0]["query"]["client_id"] == sb.client_id  # not a secret
