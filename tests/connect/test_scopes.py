"""The granted scopes, as HubSpot's introspection endpoint reports them (issue 13; R-AUTH-3).

HubSpot's token response need not list the scopes it granted; `POST /oauth/v3/token/introspect`
does. The connection stores them space-separated in `integrations.scope`. When introspection is
unavailable the connection still succeeds and the column keeps what it held.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from hubspot_ledger.connect import auth_url, complete_connection
from hubspot_ledger.errors import ConnectFailed
from hubspot_ledger.hooks.hubspot import DEFAULT_SCOPES
from hubspot_ledger.oauth_state import sign_state
from hubspot_ledger.tokens import IntegrationTokens

if TYPE_CHECKING:
    from conftest import ConnectEnv

pytestmark = pytest.mark.integration

INTROSPECT = "POST /oauth/v3/token/introspect"
CONTACTS = "crm.objects.contacts.read"


def test_r_auth_3_the_scope_stored_is_what_introspection_reports(env: ConnectEnv) -> None:
    """Introspection, not the token response, is the source: an answer listing one more scope
    than was asked for is what lands in the column."""
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    reported = [*DEFAULT_SCOPES, "crm.schemas.deals.read"]
    env.sandbox.add_fault(endpoint=INTROSPECT, action="raw", raw=json.dumps(
        {"active": True, "hub_id": env.sandbox.portal_id, "scopes": reported,
         "token_use": "access_token", "token_type": "Bearer"}))

    complete_connection(code, state)

    row = env.row(integration_id)
    assert row["status"] == "connected"
    assert row["scope"] == " ".join(reported)
    introspections = env.sandbox.requests(endpoint=INTROSPECT)
    assert len(introspections) == 1 and introspections[0]["query"] == {}  # all in the body


def test_r_auth_3_an_optional_scope_the_user_granted_is_stored(env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    state = sign_state(integration_id, env.cipher.signing_key)
    code = env.sandbox.authorize(state=state, optional_scopes=[CONTACTS])

    complete_connection(code, state)

    assert env.row(integration_id)["scope"].split() == [*DEFAULT_SCOPES, CONTACTS]


def test_r_auth_3_introspection_unavailable_still_connects_and_keeps_the_scope(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    state = sign_state(integration_id, env.cipher.signing_key)
    complete_connection(env.sandbox.authorize(state=state, optional_scopes=[CONTACTS]), state)
    scope = env.row(integration_id)["scope"]
    old_access, _ = env.tokens(integration_id)
    env.sandbox.add_fault(endpoint=INTROSPECT, status=503, headers={"Retry-After": "0"})

    integration = env.connect(integration_id)  # a reconnect without the optional scope

    row = env.row(integration_id)
    assert integration.status == row["status"] == "connected"
    assert row["status_message"] is None
    assert env.tokens(integration_id)[0] != old_access  # the new tokens are stored
    assert row["scope"] == scope  # as before: HubSpot could not confirm the new grant


def test_r_auth_3_a_first_connection_without_introspection_leaves_the_scope_empty(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    env.sandbox.add_fault(endpoint=INTROSPECT, action="raw", raw="<html>oops</html>")

    env.connect(integration_id)

    row = env.row(integration_id)
    assert (row["status"], row["scope"]) == ("connected", None)
    assert env.token_works(env.tokens(integration_id)[0])


def test_r_auth_5_scopes_missing_per_introspection_refuse_the_connection(
        env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    code, state = env.consent(auth_url(integration_id))
    env.sandbox.add_fault(endpoint=INTROSPECT, action="raw", raw=json.dumps(
        {"active": True, "scopes": ["oauth", "crm.objects.deals.read"]}))

    with pytest.raises(ConnectFailed, match="HubSpot did not grant the scopes "
                                            "crm.objects.companies.read"):
        complete_connection(code, state)

    row = env.row(integration_id)
    assert row["status"] == "error" and row["access_token"] is None and row["scope"] is None


def test_r_auth_6_a_refresh_keeps_the_scope(env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    env.connect(integration_id)
    scope = env.row(integration_id)["scope"]
    env.make_near_expiry(integration_id)
    env.sandbox.clear_requests()

    IntegrationTokens(integration_id).access_token()

    assert env.row(integration_id)["scope"] == scope
    # Cheap: a refresh is one call to the token endpoint, no introspection.
    assert [r["endpoint"] for r in env.sandbox.requests()] == ["POST /oauth/v3/token"]
