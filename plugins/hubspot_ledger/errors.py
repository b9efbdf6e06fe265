"""Errors a person must act on. Their messages are shown as they are (CLI line, JSON body,
task log), so they say what is wrong and what to do, and never carry a token."""

from __future__ import annotations


class UserFacingError(Exception):
    http_status = 400


class NotFound(UserFacingError):
    http_status = 404


class InvalidInput(UserFacingError):
    http_status = 422


class SetupIncomplete(UserFacingError):
    """R-SET-3: the message starts with "Setup incomplete:" (DESIGN decision)."""

    http_status = 409

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"Setup incomplete: {'; '.join(missing)}")
        self.missing = missing


class ConnectFailed(UserFacingError):
    """R-AUTH-5: the OAuth exchange or validation failed. A not-yet-connected integration shows
    why (status `error`); a connected one keeps working as it was.

    `http_status` says whose move it is: 400 the attempt itself failed (start again, or an
    operator fixes hubspot_default), 502 HubSpot answered nonsense, 503 HubSpot is unavailable
    for now (try again later).
    """

    def __init__(self, message: str, *, http_status: int = 400) -> None:
        super().__init__(message)
        self.http_status = http_status


class PortalMismatch(ConnectFailed):
    """DESIGN "one portal per integration": the portal is fixed at the first connection; a
    consent for another portal is refused and nothing changes."""

    def __init__(self, pinned: str, offered: str) -> None:
        super().__init__(f"Not connected: this integration is connected to portal {pinned}; "
                         f"create a new integration for portal {offered} (nothing was changed)",
                         http_status=409)
        self.pinned = pinned
        self.offered = offered


class ReconnectRequired(UserFacingError):
    """R-AUTH-7: HubSpot access was revoked; only reconnecting helps, retrying does not."""

    http_status = 409
