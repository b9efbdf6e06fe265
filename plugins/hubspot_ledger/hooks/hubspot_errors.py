"""What a HubSpot call can fail with, each saying in an operator's words what happened."""

from __future__ import annotations

import requests
from airflow.sdk.exceptions import AirflowFailException


class HubSpotError(Exception):
    """A HubSpot call failed. `message` is written for an operator; it never contains tokens."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HubSpotAuthError(HubSpotError):
    """OAuth failed in a way only a person can fix (reconnect, fix the app's settings)."""


class HubSpotRefreshTokenRevoked(HubSpotAuthError):
    """HubSpot refused the refresh token (`BAD_REFRESH_TOKEN` / `invalid_grant`): the customer
    revoked access or uninstalled the app. Only reconnecting helps (R-AUTH-7)."""


class HubSpotAppRejected(HubSpotAuthError, AirflowFailException):
    """HubSpot refused the deployment's app itself (client id, client secret, redirect URI of
    `hubspot_default`, R-AUTH-1). No integration is at fault and no retry can succeed, so it
    is also an `AirflowFailException`: a task that lets it through fails at once, without
    Airflow's retries (every integration's run would otherwise retry into the same wall)."""


class HubSpotTemporaryError(HubSpotError):
    """HubSpot did not answer usefully (429, 5xx, time-out, connection reset), even after the
    hook's retries. Nothing was changed; a later attempt (Airflow's task retry) may succeed."""


class HubSpotMalformedResponse(HubSpotError):
    """HubSpot answered 200 with a body that is not what its API documents (not JSON, not an
    object, a required field missing or of the wrong type). Nothing from it was used."""


class HubSpotBudgetExhausted(HubSpotError):
    """The portal's daily API budget is nearly spent: stop, leave the rest to its other apps."""


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error_description") or body.get("status")
                   or response.reason)
    return response.reason or ""

