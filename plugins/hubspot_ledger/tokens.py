"""An integration's HubSpot access token, valid on demand (R-AUTH-6, R-AUTH-7).

Tokens live encrypted in the ledger. A refresh happens when the access token is within five
minutes of expiry, or when HubSpot answers 401 mid-sync. Refreshes of one integration are
serialized by a row lock in the ledger, so concurrent tasks end with one valid pair of tokens.

A failed refresh is told apart by its cause, because only one cause is the customer's:

| cause at the token endpoint                 | integration            | raised                   |
|---------------------------------------------|------------------------|--------------------------|
| refresh token revoked (BAD_REFRESH_TOKEN)   | `error`, "reconnect"   | ReconnectRequired        |
| 429, 5xx, time-out, reset (after retries)   | unchanged (`connected`)| HubSpotTemporaryError    |
| client id/secret refused (invalid_client)   | unchanged              | HubSpotAppRejected       |
| 200 without usable tokens                   | unchanged              | HubSpotMalformedResponse |
| any other refusal (4xx)                     | unchanged              | HubSpotAuthError         |

ReconnectRequired and HubSpotAppRejected must not be retried (a person must act: the customer,
or the operator for the whole deployment); the others are Airflow's task retries' business. In
every case but a success nothing is stored: the locked transaction rolls back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from hubspot_ledger.crypto import TokenCipher, get_cipher
from hubspot_ledger.errors import ReconnectRequired
from hubspot_ledger.hooks.hubspot import (
    REVOKED_MESSAGE,
    HubSpotError,
    HubSpotHook,
    HubSpotRefreshTokenRevoked,
)
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import Integration, IntegrationStatus, TokenUpdate

log = logging.getLogger(__name__)

NEAR_EXPIRY = dt.timedelta(minutes=5)  # DESIGN decision: "near expiry" means within 5 minutes

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Revoked(Exception):
    """Raised inside the locked transaction so that it rolls back before status is written."""


class IntegrationTokens:
    """The `TokenSource` a HubSpotHook uses during a sync of one integration."""

    def __init__(self, integration_id: int, *, ledger: LedgerHook | None = None,
                 hubspot: HubSpotHook | None = None, cipher: TokenCipher | None = None,
                 clock: Clock = _utcnow) -> None:
        self.integration_id = integration_id
        self.ledger = ledger or LedgerHook()
        self.hubspot = hubspot or HubSpotHook()
        self.cipher = cipher or get_cipher()
        self.clock = clock
        self._current: Integration | None = None

    def _near_expiry(self, integration: Integration) -> bool:
        expires_at = integration.expires_at()
        return expires_at is None or self.clock() >= expires_at - NEAR_EXPIRY

    def _usable(self, integration: Integration) -> Integration:
        if integration.status != IntegrationStatus.CONNECTED or not integration.refresh_token:
            reason = integration.status_message or f"status is {integration.status}"
            raise ReconnectRequired(f"HubSpot is not connected ({reason}): reconnect HubSpot")
        return integration

    def access_token(self) -> str:
        """A token valid for at least five more minutes; refreshes it first if needed."""
        current = self._current or self._usable(self.ledger.integrations.get(self.integration_id))
        if self._near_expiry(current):
            current = self._refresh(stale=current.access_token, force=False)
        self._current = current
        assert current.access_token is not None
        return self.cipher.decrypt(current.access_token)

    def refresh(self) -> str:
        """After a 401: a new token, unless another process refreshed since we read ours."""
        stale = self._current.access_token if self._current else None
        self._current = self._refresh(stale=stale, force=True)
        assert self._current.access_token is not None
        return self.cipher.decrypt(self._current.access_token)

    def _refresh(self, *, stale: str | None, force: bool) -> Integration:
        def decide(current: Integration) -> TokenUpdate | None:
            self._usable(current)
            someone_else_refreshed = current.access_token != stale
            if someone_else_refreshed and not self._near_expiry(current):
                return None
            if not force and not self._near_expiry(current):
                return None
            assert current.refresh_token is not None
            try:
                grant = self.hubspot.refresh_tokens(self.cipher.decrypt(current.refresh_token))
            except HubSpotRefreshTokenRevoked as exc:
                raise _Revoked(str(exc)) from None
            log.info("Refreshed the HubSpot access token of integration %s (valid %ss)",
                     self.integration_id, grant.expires_in)
            return TokenUpdate(
                access_token=self.cipher.encrypt(grant.access_token),
                refresh_token=self.cipher.encrypt(grant.refresh_token),
                expires_in=grant.expires_in,
                # The scopes of a refresh token never change on refresh; the column keeps what
                # introspection confirmed at connect (connect.py) rather than the token
                # response's optional, unverified list.
                scope=current.scope or "",
                token_created_at=self.clock(),
            )

        try:
            return self.ledger.tokens.update_locked(self.integration_id, decide)
        except _Revoked as exc:
            # R-AUTH-7: the one refresh failure that is the customer's to fix.
            message = f"{REVOKED_MESSAGE} ({exc})" if str(exc) != REVOKED_MESSAGE \
                else REVOKED_MESSAGE
            self.ledger.integrations.set_status(self.integration_id, IntegrationStatus.ERROR,
                                               message)
            log.error("Integration %s: %s", self.integration_id, message)
            raise ReconnectRequired(message) from None
        except HubSpotError as exc:
            # Anything else is not the customer's doing: the status (and a working connection
            # once HubSpot is back, or the operator fixed hubspot_default) stays as it is.
            # Same class, so that callers and Airflow still tell the causes apart.
            log.error("Integration %s: refreshing the HubSpot access token failed: %s",
                      self.integration_id, exc)
            raise type(exc)(f"Refreshing the HubSpot access token of integration "
                            f"{self.integration_id} failed: {exc}. Nothing was stored; the "
                            "integration stays connected (no reconnect needed)",
                            status=exc.status, code=exc.code) from None
