"""Connecting an organization's HubSpot portal (R-AUTH-1…5): the service behind the consent
endpoint, the OAuth callback and the `auth-url` / `connect` CLI verbs."""

from __future__ import annotations

import datetime as dt
import logging

from hubspot_ledger.crypto import get_cipher
from hubspot_ledger.errors import ConnectFailed, InvalidInput, NotFound
from hubspot_ledger.hooks.hubspot import HubSpotError, HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.ledger.errors import NotFoundError
from hubspot_ledger.ledger.records import Integration, IntegrationStatus, TokenUpdate
from hubspot_ledger.oauth_state import InvalidState, sign_state, verify_state

log = logging.getLogger(__name__)


def load_integration(ledger: LedgerHook, integration_id: int) -> Integration:
    """The integration, or NotFound (404) saying it does not exist."""
    try:
        return ledger.get_integration(integration_id)
    except NotFoundError:
        raise NotFound(f"Integration {integration_id} does not exist") from None


def auth_url(integration_id: int, *, ledger: LedgerHook | None = None,
             hubspot: HubSpotHook | None = None) -> str:
    """The HubSpot consent URL, with a signed state bound to this integration (R-AUTH-2)."""
    integration = load_integration(ledger or LedgerHook(), integration_id)
    state = sign_state(integration.id, get_cipher().signing_key)
    return (hubspot or HubSpotHook()).consent_url(state)


def complete_connection(code: str, state: str, *, ledger: LedgerHook | None = None,
                        hubspot: HubSpotHook | None = None) -> Integration:
    """Exchange the code and connect the integration the state names (R-AUTH-3, R-AUTH-4).

    A bad state changes nothing (we cannot trust which integration it names). Any failure
    after that leaves the integration in `error` with a message saying what to fix (R-AUTH-5),
    and stores nothing: tokens are written only once every step has succeeded.
    """
    ledger = ledger or LedgerHook()
    hubspot = hubspot or HubSpotHook()
    if not code:
        raise InvalidInput("The OAuth callback carries no code")
    try:
        claims = verify_state(state, get_cipher().signing_key)
    except InvalidState as exc:
        raise InvalidInput(str(exc)) from None
    integration = load_integration(ledger, claims.integration_id)
    if not ledger.claim_oauth_state(claims.nonce, integration.id, claims.expires_at):
        raise InvalidInput("This OAuth state was already used; start the connection again")
    try:
        grant = hubspot.exchange_code(code)
        account = hubspot.account_details(grant.access_token)
    except HubSpotError as exc:
        ledger.set_integration_status(integration.id, IntegrationStatus.ERROR, str(exc))
        log.warning("Connecting integration %s failed: %s", integration.id, exc)
        raise ConnectFailed(str(exc)) from None
    cipher = get_cipher()
    ledger.store_connection(
        integration.id,
        TokenUpdate(access_token=cipher.encrypt(grant.access_token),
                    refresh_token=cipher.encrypt(grant.refresh_token),
                    expires_in=grant.expires_in, scope=" ".join(grant.scopes),
                    token_created_at=dt.datetime.now(dt.UTC)),
        remote_id=str(account.portal_id), currency=account.currency,
        ui_domain=account.ui_domain,
    )
    log.info("Integration %s connected to HubSpot portal %s", integration.id, account.portal_id)
    return ledger.get_integration(integration.id)
