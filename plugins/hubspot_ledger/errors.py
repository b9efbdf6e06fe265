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
    """R-AUTH-5: the OAuth exchange or validation failed; the integration shows why."""


class ReconnectRequired(UserFacingError):
    """R-AUTH-7: HubSpot access was revoked; only reconnecting helps, retrying does not."""

    http_status = 409
