"""OAuth state and rules: authorization codes, access and refresh tokens (hubspot-api.md §1).

Codes are single-use and short-lived; an access token is bound to the portal the user consented
for; refreshing returns a fresh access token and the same refresh token; deleting a refresh
token leaves the access tokens made with it alive, as HubSpot documents.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hubspot_ledger_tools.sandbox.config import SandboxConfig
from hubspot_ledger_tools.sandbox.timefmt import now_ms

USER_ID = 2_718_281
USER_EMAIL = "sandbox.user@example.com"


class OAuthError(Exception):
    """A refused token request: `status` is HubSpot's legacy code, `error` the RFC 6749 one."""

    def __init__(self, error: str, status: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.status = status
        self.description = description


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    portal_id: int
    expires_ms: int
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    portal_id: int
    scopes: list[str]
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    client_id: str
    portal_id: int
    scopes: list[str]
    expires_ms: int
    refresh_token: str | None = None
    revoked: bool = False

    def expires_in(self, now: int) -> int:
        return max(0, (self.expires_ms - now) // 1000)


def _hubspot_style_id() -> str:
    """`na1-xxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, the shape of HubSpot's codes and refresh tokens."""
    hex_id = uuid.uuid4().hex
    return f"na1-{hex_id[:4]}-{hex_id[4:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:28]}"


def _bad_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", "BAD_REQUEST", description)


@dataclass
class OAuthState:
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)

    # -- consent and exchange ---------------------------------------------------------------

    def issue_code(self, config: SandboxConfig, redirect_uri: str, scopes: list[str],
                   portal_id: int) -> str:
        code = _hubspot_style_id()
        self.codes[code] = AuthCode(code, config.client_id, redirect_uri, scopes, portal_id,
                                    now_ms() + config.code_ttl * 1000)
        return code

    def token_request(self, config: SandboxConfig, form: Mapping[str, str]) -> dict[str, Any]:
        """The token endpoint's success body, or OAuthError with HubSpot's error fields."""
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise _bad_request("missing grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", "BAD_GRANT_TYPE",
                             f"unsupported grant_type: {grant_type}")
        client_id = form.get("client_id", "")
        if not client_id:
            raise _bad_request("missing client_id")
        if client_id != config.client_id:
            raise OAuthError("invalid_client", "BAD_CLIENT_ID", "missing or unknown client_id")
        secret = form.get("client_secret", "")
        if not secret:
            raise _bad_request("missing client_secret")
        if not secrets.compare_digest(secret, config.client_secret):
            raise OAuthError("invalid_client", "BAD_CLIENT_SECRET",
                             "client_secret does not match the app's client secret")
        if grant_type == "authorization_code":
            return self._exchange_code(config, form)
        return self._refresh(config, form)

    def _exchange_code(self, config: SandboxConfig, form: Mapping[str, str]) -> dict[str, Any]:
        code_text, redirect_uri = form.get("code", ""), form.get("redirect_uri", "")
        if not code_text:
            raise _bad_request("missing code")
        if not redirect_uri:
            raise _bad_request("missing redirect_uri")
        code = self.codes.get(code_text)
        if code is None or code.used or code.client_id != config.client_id:
            raise OAuthError("invalid_grant", "BAD_AUTH_CODE", "missing or unknown auth code")
        if now_ms() >= code.expires_ms:
            raise OAuthError("invalid_grant", "EXPIRED_AUTH_CODE", "auth code is expired")
        if redirect_uri != code.redirect_uri:
            raise OAuthError("invalid_grant", "BAD_REDIRECT_URI",
                             "redirect_uri does not match the redirect_uri used to get the "
                             "auth code")
        code.used = True
        refresh = RefreshToken(_hubspot_style_id(), code.client_id, code.portal_id,
                               list(code.scopes))
        self.refresh_tokens[refresh.token] = refresh
        return self._token_body(config, refresh)

    def _refresh(self, config: SandboxConfig, form: Mapping[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        if not token:
            raise _bad_request("missing refresh_token")
        refresh = self.refresh_tokens.get(token)
        if refresh is None or refresh.revoked or refresh.client_id != config.client_id:
            raise OAuthError("invalid_grant", "BAD_REFRESH_TOKEN",
                             "refresh token is invalid, expired or revoked")
        return self._token_body(config, refresh)

    def _token_body(self, config: SandboxConfig, refresh: RefreshToken) -> dict[str, Any]:
        access = self.new_access_token(config, refresh)
        return {"token_type": "bearer", "refresh_token": refresh.token,
                "access_token": access.token, "expires_in": config.access_token_ttl,
                "hub_id": refresh.portal_id, "scopes": list(refresh.scopes),
                "token_use": "access_token"}

    def new_access_token(self, config: SandboxConfig, refresh: RefreshToken) -> AccessToken:
        # Real tokens are opaque, base64-ish and up to 512 characters.
        token = "CN" + secrets.token_urlsafe(96)
        access = AccessToken(token, refresh.client_id, refresh.portal_id, list(refresh.scopes),
                             now_ms() + config.access_token_ttl * 1000, refresh.token)
        self.access_tokens[token] = access
        return access

    def mint(self, config: SandboxConfig, portal_id: int, scopes: list[str]) -> dict[str, Any]:
        """Tokens without the consent dance (admin API), same body as the token endpoint."""
        refresh = RefreshToken(_hubspot_style_id(), config.client_id, portal_id, scopes)
        self.refresh_tokens[refresh.token] = refresh
        return self._token_body(config, refresh)

    # -- lookups and admin tricks --------------------------------------------------------

    def access(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        return None if found is None or found.revoked else found

    def revoke_refresh(self, token: str) -> bool:
        refresh = self.refresh_tokens.get(token)
        if refresh is None or refresh.revoked:
            return False
        refresh.revoked = True
        return True

    def revoke(self, portal_id: int | None = None, access_tokens: bool = False) -> int:
        """Revoke refresh tokens (of one portal, or all); optionally kill their access tokens,
        as uninstalling the app does. Returns how many refresh tokens were revoked."""
        count = 0
        for refresh in self.refresh_tokens.values():
            if not refresh.revoked and portal_id in (None, refresh.portal_id):
                refresh.revoked = True
                count += 1
        if access_tokens:
            for access in self.access_tokens.values():
                if portal_id in (None, access.portal_id):
                    access.revoked = True
        return count

    def expire(self, portal_id: int | None = None, token: str | None = None) -> int:
        """Make live access tokens expire now; returns how many did."""
        now = now_ms()
        count = 0
        for access in self.access_tokens.values():
            if token is not None and access.token != token:
                continue
            if portal_id in (None, access.portal_id) and access.expires_ms > now:
                access.expires_ms = now
                count += 1
        return count
