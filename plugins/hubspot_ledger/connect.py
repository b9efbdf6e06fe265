"""Connecting an organization's HubSpot portal (R-AUTH-1…5): the service behind the consent
endpoint, the OAuth callback and the `auth-url` / `connect` CLI verbs.

What a connection attempt leaves behind:

| outcome                                 | integration                       | raised        |
|-----------------------------------------|-----------------------------------|---------------|
| success                                 | `connected`, new tokens, scope    | -             |
| bad state (tampered, expired, replayed) | unchanged                         | InvalidInput  |
| another portal than the pinned one      | unchanged                         | PortalMismatch|
| failure, integration not connected      | `error` + message, nothing stored | ConnectFailed |
| failure, integration connected          | unchanged (keeps working)         | ConnectFailed |

InvalidInput answers 400, PortalMismatch 409. ConnectFailed answers 400 for a refused exchange
(bad code, missing scopes, the app's credentials), 502 for a malformed answer from HubSpot, 503
when HubSpot stayed unavailable through the retries.
"""

from __future__ import annotations

import datetime as dt
import logging

from hubspot_ledger.crypto import get_cipher
from hubspot_ledger.errors import ConnectFailed, InvalidInput, NotFound, PortalMismatch
from hubspot_ledger.hooks.hubspot import (
    AccountDetails,
    HubSpotError,
    HubSpotHook,
    HubSpotMalformedResponse,
    HubSpotTemporaryError,
    TokenGrant,
)
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.errors import NotFoundError
from hubspot_ledger.load.records import Integration, IntegrationStatus, TokenUpdate
from hubspot_ledger.oauth_state import InvalidState, sign_state, verify_state

log = logging.getLogger(__name__)


def load_integration(ledger: LedgerHook, integration_id: int) -> Integration:
    """The integration, or NotFound (404) saying it does not exist."""
    try:
        return ledger.integrations.get(integration_id)
    except NotFoundError:
        raise NotFound(f"Integration {integration_id} does not exist") from None


def auth_url(integration_id: int, *, ledger: LedgerHook | None = None,
             hubspot: HubSpotHook | None = None) -> str:
    """The HubSpot consent URL, with a signed state bound to this integration (R-AUTH-2)."""
    integration = load_integration(ledger or LedgerHook(), integration_id)
    state = sign_state(integration.id, get_cipher().signing_key)
    return (hubspot or HubSpotHook()).consent_url(state)


def _http_status(exc: HubSpotError) -> int:
    if isinstance(exc, HubSpotTemporaryError):
        return 503
    if isinstance(exc, HubSpotMalformedResponse):
        return 502
    return 400


def _failed(ledger: LedgerHook, integration: Integration, message: str, *,
            http_status: int = 400) -> ConnectFailed:
    """R-AUTH-5 for an integration that is not working yet: status `error` with the message.

    A connected integration keeps its working connection exactly as it was (status, message,
    tokens): a botched reconnect (a stale browser tab, a code pasted twice, HubSpot down for a
    minute) must not stop its syncs. The check and the write are one statement.
    """
    marked = ledger.integrations.set_status(integration.id, IntegrationStatus.ERROR, message,
                                           unless=IntegrationStatus.CONNECTED)
    if not marked:
        message = (f"{message} (the integration stays connected to portal "
                   f"{integration.remote_id} as before)")
    log.warning("Connecting integration %s failed: %s", integration.id, message)
    return ConnectFailed(message, http_status=http_status)


def _granted_scopes(hubspot: HubSpotHook, grant: TokenGrant, integration_id: int
                    ) -> tuple[str, ...] | None:
    """The scopes HubSpot granted, from its introspection endpoint (the token response need
    not list them); None when HubSpot cannot say right now.

    Choice: a failed introspection does not fail the connection. The tokens and the portal are
    already proven (the account details call succeeded with the new token); the scopes are
    bookkeeping, and a missing one shows anyway as HubSpot's clear 403 on the first sync. So
    the connection succeeds and the scope column keeps what it held; the next connect fills it.
    """
    try:
        info = hubspot.introspect(grant.access_token)
    except HubSpotError as exc:
        log.warning("Integration %s: HubSpot's token introspection failed (%s); the stored "
                    "scope is left as it was", integration_id, exc)
        return None
    if not info.active:
        log.warning("Integration %s: HubSpot's token introspection calls the new access token "
                    "inactive; the stored scope is left as it was", integration_id)
        return None
    return info.scopes


def complete_connection(code: str, state: str, *, ledger: LedgerHook | None = None,
                        hubspot: HubSpotHook | None = None,
                        expected_integration_id: int | None = None) -> Integration:
    """Exchange the code and connect the integration the state names (R-AUTH-3, R-AUTH-4).

    A bad state changes nothing (we cannot trust which integration it names), nor does a state
    of another integration than `expected_integration_id` (the CLI's --integration). Tokens are
    written only once every step has succeeded, in one statement that also pins the portal.
    See the module docstring for what each failure leaves behind.
    """
    ledger = ledger or LedgerHook()
    hubspot = hubspot or HubSpotHook()
    if not code:
        raise InvalidInput("The OAuth callback carries no code")
    try:
        claims = verify_state(state, get_cipher().signing_key.accepted)
    except InvalidState as exc:
        raise InvalidInput(str(exc)) from None
    if expected_integration_id is not None and claims.integration_id != expected_integration_id:
        raise InvalidInput(f"This OAuth state belongs to integration {claims.integration_id}, "
                           f"not {expected_integration_id}; nothing was changed")
    integration = load_integration(ledger, claims.integration_id)
    if not ledger.tokens.claim_state(claims.nonce, integration.id, claims.expires_at):
        raise InvalidInput("This OAuth state was already used; start the connection again")
    try:
        grant = hubspot.exchange_code(code)
        account = hubspot.account_details(grant.access_token)
    except HubSpotError as exc:
        raise _failed(ledger, integration, str(exc), http_status=_http_status(exc)) from None
    portal = str(account.portal_id)
    if integration.remote_id not in (None, portal):
        # Checked before anything else is asked of HubSpot; store_connection checks again,
        # atomically, against a concurrent first connection.
        raise _mismatch(integration, portal)
    granted = _granted_scopes(hubspot, grant, integration.id)
    missing = hubspot.missing_scopes(granted if granted is not None else grant.scopes)
    if missing and (granted is not None or grant.scopes):
        raise _failed(ledger, integration,
                      f"HubSpot did not grant the scopes {', '.join(missing)}: reconnect and "
                      "approve every requested scope")
    pinned = _store(ledger, integration, grant, account, granted)
    if pinned is not None:
        raise _mismatch(integration, portal, pinned)
    log.info("Integration %s connected to HubSpot portal %s", integration.id, portal)
    return ledger.integrations.get(integration.id)


def _store(ledger: LedgerHook, integration: Integration, grant: TokenGrant,
           account: AccountDetails, granted: tuple[str, ...] | None) -> str | None:
    cipher = get_cipher()
    return ledger.integrations.store_connection(
        integration.id,
        TokenUpdate(access_token=cipher.encrypt(grant.access_token),
                    refresh_token=cipher.encrypt(grant.refresh_token),
                    # "" keeps the stored scope (see _granted_scopes).
                    expires_in=grant.expires_in, scope=" ".join(granted or ()),
                    token_created_at=dt.datetime.now(dt.UTC)),
        remote_id=str(account.portal_id), currency=account.currency,
        ui_domain=account.ui_domain,
    )


def _mismatch(integration: Integration, offered: str, pinned: str | None = None
              ) -> PortalMismatch:
    """DESIGN "one portal per integration": refused, nothing stored, status untouched. The
    tokens HubSpot just issued for the other portal are dropped, not revoked: HubSpot may hand
    the same refresh token to another integration connected to that portal."""
    error = PortalMismatch(pinned or str(integration.remote_id), offered)
    log.warning("Integration %s: %s", integration.id, error)
    return error
