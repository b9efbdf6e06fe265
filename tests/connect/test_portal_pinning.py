"""One portal per integration, and reconnects that fail without breaking a working connection
(DESIGN "one portal per integration"; issue 13; R-AUTH-4, R-AUTH-5).

The portal id is fixed by the first successful connection. Consent for another portal is
refused and nothing changes; the same portal reconnecting stores its new tokens. A reconnect
that fails leaves a connected integration exactly as it was; only an integration that is not
working yet shows the failure (status `error`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from hubspot_ledger.cli import main
from hubspot_ledger.connect import auth_url, complete_connection
from hubspot_ledger.errors import ConnectFailed, InvalidInput, PortalMismatch
from hubspot_ledger.oauth_state import sign_state

if TYPE_CHECKING:
    from conftest import ConnectEnv

pytestmark = pytest.mark.integration

OTHER_PORTAL = 99_999
TOKEN = "POST /oauth/v3/token"


def consent_for(env: ConnectEnv, integration_id: int, portal_id: int | None = None
                ) -> tuple[str, str]:
    """(code, state) of the real consent, the user picking `portal_id` on HubSpot's page."""
    url = auth_url(integration_id)
    if portal_id is not None:
        url = url.replace("/oauth/authorize?", f"/oauth/{portal_id}/authorize?")
    return env.consent(url)


def connected(env: ConnectEnv) -> tuple[int, dict[str, Any]]:
    integration_id = env.new_integration()
    env.connect(integration_id)
    env.sandbox.add_portal(portal_id=OTHER_PORTAL, currency="EUR",
                           ui_domain="app-eu1.hubspot.com")
    env.sandbox.clear_requests()
    return integration_id, env.row(integration_id)


# -- one portal per integration ---------------------------------------------------------------

def test_reconnecting_to_another_portal_is_refused_and_nothing_changes(env: ConnectEnv) -> None:
    integration_id, before = connected(env)
    portal = env.sandbox.portal_id
    code, state = consent_for(env, integration_id, OTHER_PORTAL)

    with pytest.raises(PortalMismatch) as err:
        complete_connection(code, state)

    assert f"this integration is connected to portal {portal}; create a new integration for " \
           f"portal {OTHER_PORTAL}" in str(err.value)
    assert err.value.http_status == 409
    assert env.row(integration_id) == before  # tokens, status, message, remote_id, currency
    assert env.token_works(env.tokens(integration_id)[0])


def test_an_integration_in_error_is_still_pinned_to_its_portal(env: ConnectEnv) -> None:
    """A revoked integration (R-AUTH-7) reconnects to its own portal only."""
    integration_id, _ = connected(env)
    env.ledger.execute("UPDATE ledger.integrations SET status = 'error', status_message = "
                       "'HubSpot access was revoked' WHERE id = %s", [integration_id])
    before = env.row(integration_id)

    code, state = consent_for(env, integration_id, OTHER_PORTAL)
    with pytest.raises(PortalMismatch, match=f"create a new integration for portal "
                                             f"{OTHER_PORTAL}"):
        complete_connection(code, state)
    assert env.row(integration_id) == before  # still `error`, its message unchanged

    env.connect(integration_id)  # its own portal: reconnected
    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("connected", None)
    assert row["remote_id"] == str(env.sandbox.portal_id)


def test_the_same_portal_reconnecting_stores_the_new_tokens(env: ConnectEnv) -> None:
    integration_id, before = connected(env)
    old_access, old_refresh = env.tokens(integration_id)

    integration = env.connect(integration_id)

    row = env.row(integration_id)
    assert integration.status == row["status"] == "connected"
    assert row["remote_id"] == before["remote_id"] == str(env.sandbox.portal_id)
    new_access, new_refresh = env.tokens(integration_id)
    assert (new_access, new_refresh) != (old_access, old_refresh)
    assert env.token_works(new_access)
    assert row["token_created_at"] > before["token_created_at"]


def test_the_first_connection_pins_the_portal_even_when_two_race(env: ConnectEnv) -> None:
    """Two consents of one new integration, for two portals, completed at the same moment:
    one connects, the other is refused; never a mix of both."""
    integration_id = env.new_integration()
    env.sandbox.add_portal(portal_id=OTHER_PORTAL)
    attempts = [consent_for(env, integration_id), consent_for(env, integration_id, OTHER_PORTAL)]
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def run(slot: int) -> None:
        barrier.wait()
        try:
            outcomes[slot] = complete_connection(*attempts[slot])
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcomes[slot] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    refused = [o for o in outcomes if isinstance(o, PortalMismatch)]
    assert len(refused) == 1, outcomes
    row = env.row(integration_id)
    assert row["status"] == "connected" and row["remote_id"] == refused[0].pinned
    access, _ = env.tokens(integration_id)
    assert env.token_works(access)
    assert env.sandbox.sandbox.oauth.access(access).portal_id == int(row["remote_id"])


# -- a failed reconnect keeps a working connection ------------------------------------------------

def _garbage_code(env: ConnectEnv, integration_id: int) -> tuple[str, str]:
    _, state = consent_for(env, integration_id)
    return "not-a-code-hubspot-issued", state


def _wrong_secret(env: ConnectEnv, integration_id: int) -> tuple[str, str]:
    attempt = consent_for(env, integration_id)
    env.use_app(password="not-the-app-secret")
    return attempt


def _fault(**rule: Any) -> Any:
    def arrange(env: ConnectEnv, integration_id: int) -> tuple[str, str]:
        attempt = consent_for(env, integration_id)
        env.sandbox.add_fault(**rule)
        return attempt
    return arrange


FAILED_RECONNECTS = {
    "garbage-code": (_garbage_code, 400, "authorization code is invalid or was already used"),
    "wrong-client-secret": (_wrong_secret, 400, "were refused: HubSpot rejected the client "
                                                "secret"),
    "malformed-token-response": (_fault(endpoint=TOKEN, action="raw", raw="[]"), 502,
                                 "a JSON list instead of an object"),
    "malformed-account-details": (_fault(endpoint="GET /account-info/v3/details", action="raw",
                                         raw="{}"), 502, "an empty JSON object"),
    "hubspot-down": (_fault(endpoint=TOKEN, status=503, headers={"Retry-After": "0"}), 503,
                     "try again later"),
}


@pytest.mark.parametrize("case", list(FAILED_RECONNECTS))
def test_a_failed_reconnect_leaves_a_connected_integration_exactly_as_it_was(
        env: ConnectEnv, case: str) -> None:
    arrange, http_status, said = FAILED_RECONNECTS[case]
    integration_id, before = connected(env)

    code, state = arrange(env, integration_id)
    with pytest.raises(ConnectFailed) as err:
        complete_connection(code, state)

    assert said in str(err.value)
    assert err.value.http_status == http_status
    assert f"the integration stays connected to portal {env.sandbox.portal_id} as before" in \
        str(err.value)
    assert env.row(integration_id) == before  # status, message, tokens, scope: untouched
    env.use_app()
    env.sandbox.clear_faults()
    assert env.token_works(env.tokens(integration_id)[0])  # the syncs go on


def test_r_auth_5_a_failed_reconnect_of_an_integration_in_error_shows_the_new_failure(
        env: ConnectEnv) -> None:
    integration_id, _ = connected(env)
    env.ledger.execute("UPDATE ledger.integrations SET status = 'error', status_message = "
                       "'HubSpot access was revoked' WHERE id = %s", [integration_id])
    code, state = _garbage_code(env, integration_id)

    with pytest.raises(ConnectFailed) as err:
        complete_connection(code, state)

    row = env.row(integration_id)
    assert (row["status"], row["status_message"]) == ("error", str(err.value))
    assert "authorization code is invalid" in row["status_message"]


# -- the CLI: one line, non-zero, and a state of another integration changes nothing -------------

def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("hubspot-ledger: ")]
    assert len(lines) == 1, lines
    return lines[0]


def test_cli_connect_to_another_portal_exits_non_zero_with_one_line(
        env: ConnectEnv, capsys: pytest.CaptureFixture[str]) -> None:
    integration_id, before = connected(env)
    code, state = consent_for(env, integration_id, OTHER_PORTAL)
    capsys.readouterr()

    status = main(["connect", "--integration", str(integration_id), "--code", code,
                   "--state", state])

    assert status == 1
    line = _one_line(capsys)
    assert f"this integration is connected to portal {env.sandbox.portal_id}; create a new " \
           f"integration for portal {OTHER_PORTAL}" in line
    assert code not in line and state not in line
    assert env.row(integration_id) == before


def test_cli_connect_with_a_state_of_another_integration_spends_nothing(
        env: ConnectEnv, capsys: pytest.CaptureFixture[str]) -> None:
    mine, theirs = env.new_integration("Acme Corp"), env.new_integration("Globex")
    code, state = consent_for(env, theirs)
    capsys.readouterr()

    status = main(["connect", "--integration", str(mine), "--code", code, "--state", state])

    assert status == 1
    assert f"belongs to integration {theirs}, not {mine}" in _one_line(capsys)
    assert env.token_requests() == []  # refused before the code was exchanged
    for integration_id in (mine, theirs):
        assert env.row(integration_id)["status"] == "disconnected"
    # The state is still good for its own integration.
    complete_connection(code, state)
    assert env.row(theirs)["status"] == "connected"


def test_expected_integration_is_checked_before_the_state_is_claimed(env: ConnectEnv) -> None:
    mine, theirs = env.new_integration("Acme Corp"), env.new_integration("Globex")
    state = sign_state(theirs, env.cipher.signing_key)
    with pytest.raises(InvalidInput, match="belongs to integration"):
        complete_connection("any-code", state, expected_integration_id=mine)
    assert env.ledger.execute("SELECT count(*) FROM ledger.oauth_states").fetchone() == (0,)
