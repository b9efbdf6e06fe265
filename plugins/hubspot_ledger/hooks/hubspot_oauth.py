"""HubSpot's OAuth and account API (hubspot-api.md §1): the app's settings, the token endpoint,
introspection, account details, each answer checked field by field and each refusal classified
by its cause. `HubSpotOAuth` is the part of `HubSpotHook` that calls them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
import tenacity

from hubspot_ledger.hooks.hubspot_errors import (
    HubSpotAppRejected,
    HubSpotAuthError,
    HubSpotError,
    HubSpotMalformedResponse,
    HubSpotRefreshTokenRevoked,
    HubSpotTemporaryError,
    _error_message,
)
from hubspot_ledger.hooks.hubspot_http import (
    OAUTH_ATTEMPTS,
    OAUTH_BACKOFF,
    ResponseDeadlineExceeded,
    _log_retry,
    _timeout,
    _Transient,
    _wait_retry_after_or,
)
from hubspot_ledger.hooks.hubspot_paths import ApiPaths, api_paths

DEFAULT_API_BASE = "https://api.hubapi.com"
DEFAULT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
# The paths of the default API version (the hook calls those of its connection's version).
TOKEN_PATH = api_paths().token
INTROSPECT_PATH = api_paths().introspect
ACCOUNT_DETAILS_PATH = api_paths().account_details
DEFAULT_SCOPES = ("oauth", "crm.objects.deals.read", "crm.objects.companies.read",
                  "crm.objects.line_items.read", "crm.objects.products.read",
                  "crm.objects.invoices.read")

@dataclass(frozen=True)
class OAuthApp:
    """The deployment's HubSpot app (R-AUTH-1): never per customer."""

    api_base: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: tuple[str, ...]
    authorize_url: str
    paths: ApiPaths = api_paths()  # the API version's paths (extra `api_version`)

    def __repr__(self) -> str:  # the secret must never reach a log line
        return (f"OAuthApp(api_base={self.api_base!r}, client_id={self.client_id!r}, "
                f"api_version={self.paths.version!r}, ...)")


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]
    hub_id: int | None

    def __repr__(self) -> str:
        return f"TokenGrant(expires_in={self.expires_in}, hub_id={self.hub_id}, scopes=...)"


@dataclass(frozen=True)
class TokenInfo:
    """What HubSpot's introspection endpoint says about an access token (never the token)."""

    active: bool
    scopes: tuple[str, ...]
    hub_id: int | None


@dataclass(frozen=True)
class AccountDetails:
    portal_id: int
    currency: str | None
    ui_domain: str
    time_zone: str | None


def _scopes(value: Any) -> tuple[str, ...]:
    if not value:
        return DEFAULT_SCOPES
    if isinstance(value, list | tuple):
        return tuple(str(s) for s in value)
    text = str(value).strip()
    if text.startswith("["):
        return tuple(str(s) for s in json.loads(text))
    return tuple(text.split())


# The deployment's app was refused (R-AUTH-1): an operator fixes `hubspot_default`, nobody
# reconnects. The first words are the same for every cause, so that an operator can grep them.
APP_REFUSED = "The HubSpot app's client id/secret in the hubspot_default connection were refused"
_APP_MESSAGES = {
    "BAD_CLIENT_ID": f"{APP_REFUSED}: HubSpot does not know the client id; check the login of "
                     "the hubspot_default connection",
    "BAD_CLIENT_SECRET": f"{APP_REFUSED}: HubSpot rejected the client secret; check the "
                         "password of the hubspot_default connection",
    "invalid_client": f"{APP_REFUSED}; check the login (client id) and password (client secret) "
                      "of the hubspot_default connection",
    "BAD_REDIRECT_URI": "HubSpot refused the redirect URI: the redirect_uri of the "
                        "hubspot_default connection must match the app's redirect URL exactly",
}
REVOKED_MESSAGE = "HubSpot access was revoked or has expired: reconnect HubSpot"
# What the customer must do about a refused authorization code (R-AUTH-5).
_CODE_MESSAGES = {
    "BAD_AUTH_CODE": "The HubSpot authorization code is invalid or was already used: "
                     "connect HubSpot again",
    "EXPIRED_AUTH_CODE": "The HubSpot authorization code has expired: connect HubSpot again",
}


def _oauth_error(response: requests.Response, grant_type: str | None) -> HubSpotError:
    """HubSpot's refusal (a 4xx other than 429) of an OAuth call, classified by its cause.

    Only `BAD_REFRESH_TOKEN` / `invalid_grant` of a refresh means the customer must reconnect
    (R-AUTH-7); `invalid_client` and friends are the deployment's fault; anything else says
    what HubSpot said, and is retried by Airflow like any failed task.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = str(body.get("status") or "")
    error = str(body.get("error") or "")
    code = status or error
    app_message = _APP_MESSAGES.get(status) or _APP_MESSAGES.get(error)
    if app_message is not None:
        return HubSpotAppRejected(app_message, status=response.status_code, code=code)
    if grant_type == "refresh_token" and (status == "BAD_REFRESH_TOKEN"
                                          or error == "invalid_grant"):
        return HubSpotRefreshTokenRevoked(REVOKED_MESSAGE, status=response.status_code,
                                          code=code)
    message = _CODE_MESSAGES.get(status)
    if message is None and grant_type == "authorization_code" and error == "invalid_grant":
        message = _CODE_MESSAGES["BAD_AUTH_CODE"]
    if message is None:
        detail = str(body.get("error_description") or body.get("message") or response.reason
                     or "no detail")
        message = (f"HubSpot refused the OAuth request ({response.status_code} "
                   f"{code or 'without an error code'}): {detail}")
    return HubSpotAuthError(message, status=response.status_code, code=code)


_JSON_KINDS = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """The 200 body as a JSON object, or HubSpotMalformedResponse saying what it was instead.
    The body itself is never quoted: it may hold tokens."""
    try:
        body = response.json()
    except ValueError:
        raise HubSpotMalformedResponse(f"{what} answered 200 with a body that is not JSON "
                                       f"({response.headers.get('Content-Type') or 'no type'})",
                                       status=200) from None
    if not isinstance(body, dict):
        kind = "null" if body is None else _JSON_KINDS.get(type(body), type(body).__name__)
        raise HubSpotMalformedResponse(f"{what} answered 200 with a JSON {kind} instead of an "
                                       "object", status=200)
    if not body:
        raise HubSpotMalformedResponse(f"{what} answered 200 with an empty JSON object",
                                       status=200)
    return body


def _positive_int(value: Any) -> int | None:
    """An int (or a string of digits) above zero, else None. bool is not a number here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def _scope_list(value: Any) -> tuple[str, ...] | None:
    """HubSpot's `scopes`: a list of strings (a space-separated string is accepted too)."""
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    return None


def _token_grant(response: requests.Response) -> TokenGrant:
    """The token endpoint's 200, checked field by field (hubspot-api.md §1.2)."""
    what = "HubSpot's token endpoint"
    data = _json_object(response, what)
    problems = [f"{name} is missing or empty" for name in ("access_token", "refresh_token")
                if not isinstance(data.get(name), str) or not data[name].strip()]
    expires_in = _positive_int(data.get("expires_in"))
    if expires_in is None:
        problems.append("expires_in is missing or not a number of seconds")
    if problems:
        raise HubSpotMalformedResponse(f"{what} answered 200 without a usable token "
                                       f"({'; '.join(problems)})", status=200)
    assert expires_in is not None
    return TokenGrant(access_token=data["access_token"], refresh_token=data["refresh_token"],
                      expires_in=expires_in, scopes=_scope_list(data.get("scopes")) or (),
                      hub_id=_positive_int(data.get("hub_id")))


_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _account_details(response: requests.Response, path: str) -> AccountDetails:
    """Account details (hubspot-api.md §1.5), checked: a portal id is a must; a currency, when
    given, must be an ISO code (the ledger stores nothing else)."""
    what = f"HubSpot's account details ({path})"
    data = _json_object(response, what)
    portal_id = _positive_int(data.get("portalId"))
    if portal_id is None:
        raise HubSpotMalformedResponse(f"{what} answered 200 without a usable portal id",
                                       status=200)
    currency = data.get("companyCurrency") or None
    if currency is not None and (not isinstance(currency, str)
                                 or not _CURRENCY.match(currency.upper())):
        raise HubSpotMalformedResponse(f"{what} answered 200 with a company currency that is "
                                       "not an ISO 4217 code", status=200)
    ui_domain = data.get("uiDomain") or "app.hubspot.com"
    if not isinstance(ui_domain, str):
        raise HubSpotMalformedResponse(f"{what} answered 200 with a uiDomain that is not a "
                                       "host name", status=200)
    time_zone = data.get("timeZone")
    return AccountDetails(portal_id=portal_id, currency=currency.upper() if currency else None,
                          ui_domain=ui_domain,
                          time_zone=time_zone if isinstance(time_zone, str) else None)


def _token_info(response: requests.Response) -> TokenInfo:
    what = "HubSpot's token introspection"
    data = _json_object(response, what)
    if data.get("active") is not True:
        return TokenInfo(active=False, scopes=(), hub_id=None)
    scopes = _scope_list(data.get("scopes"))
    if scopes is None:
        raise HubSpotMalformedResponse(f"{what} answered 200 without a list of scopes",
                                       status=200)
    return TokenInfo(active=True, scopes=scopes, hub_id=_positive_int(data.get("hub_id")))



class HubSpotOAuth:
    """The OAuth and account calls of `HubSpotHook` (which provides `app` and `_http`)."""

    @property
    def app(self) -> OAuthApp:
        raise NotImplementedError

    def _http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        raise NotImplementedError

    # -- OAuth ---------------------------------------------------------------------------

    def consent_url(self, state: str) -> str:
        """The URL that asks the customer to approve the app (R-AUTH-2)."""
        app = self.app
        if not app.client_id or not app.redirect_uri:
            raise HubSpotAuthError("The hubspot_default connection needs a client id (login) "
                                   "and a redirect_uri extra")
        query = urlencode({"client_id": app.client_id, "redirect_uri": app.redirect_uri,
                           "scope": " ".join(app.scopes), "state": state})
        return f"{app.authorize_url}?{query}"

    def _oauth_call(self, method: str, path: str, *, form: dict[str, str] | None = None,
                    access_token: str | None = None) -> requests.Response:
        """One call of the OAuth or account API, retried with back-off on 429, 5xx, time-outs
        and dropped connections (Retry-After honoured, capped at a minute).

        Returns the final response when it is not one of those (the caller reads its status);
        raises HubSpotTemporaryError when every attempt failed that way. These calls do not
        spend the portal's API budget, so the rate limiter stays out of them.
        """
        url = f"{self.app.api_base}{path}"
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else None

        def once() -> requests.Response:
            try:
                response = self._http(method, url, data=form, headers=headers)
            except ResponseDeadlineExceeded as exc:
                raise _Transient(None, reason=str(exc)) from None
            except requests.ConnectTimeout:
                raise _Transient(None, reason=f"could not connect within {_timeout()[0]:g}s"
                                 ) from None
            except requests.Timeout:
                raise _Transient(None, reason=f"no answer within {_timeout()[1]:g}s") from None
            except requests.RequestException as exc:
                # The type only: a requests message can carry the URL and, in theory, more.
                raise _Transient(None, reason=f"connection failed ({type(exc).__name__})"
                                 ) from None
            if response.status_code == 429 or response.status_code >= 500:
                raise _Transient(response)
            return response

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            wait=_wait_retry_after_or(OAUTH_BACKOFF),
            stop=tenacity.stop_after_attempt(OAUTH_ATTEMPTS),
            before_sleep=lambda state: _log_retry(state, f"{method} {path}", OAUTH_ATTEMPTS),
            reraise=True,
        )
        try:
            response: requests.Response = retrying(once)
        except _Transient as exc:
            raise HubSpotTemporaryError(
                f"HubSpot did not answer {method} {path} after {OAUTH_ATTEMPTS} attempts "
                f"(last: {exc}): HubSpot is unavailable for now; try again later",
                status=exc.status) from None
        return response

    def _token_request(self, form: dict[str, str]) -> TokenGrant:
        app = self.app
        body = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
        response = self._oauth_call("POST", app.paths.token, form=body)
        if response.status_code != 200:
            raise _oauth_error(response, form.get("grant_type"))
        return _token_grant(response)

    def exchange_code(self, code: str) -> TokenGrant:
        """Authorization code → tokens (R-AUTH-3). Raises a HubSpotError subclass by cause.

        Retrying an exchange after a time-out may find the code already spent: HubSpot then
        says BAD_AUTH_CODE, and the message asks for a new connection, which is right.
        """
        return self._token_request({"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": self.app.redirect_uri})

    def missing_scopes(self, granted: Sequence[str]) -> list[str]:
        """The scopes of the deployment's app that `granted` lacks."""
        return [s for s in self.app.scopes if s not in granted]

    def refresh_tokens(self, refresh_token: str) -> TokenGrant:
        """A new access token (R-AUTH-6). A revoked refresh token raises
        HubSpotRefreshTokenRevoked, a refused app HubSpotAppRejected, HubSpot being unavailable
        HubSpotTemporaryError, a 200 without usable tokens HubSpotMalformedResponse."""
        return self._token_request({"grant_type": "refresh_token",
                                    "refresh_token": refresh_token})

    def introspect(self, access_token: str) -> TokenInfo:
        """What HubSpot says about an access token, notably the scopes granted to it: the token
        endpoint's own answer need not list them (hubspot-api.md §1.4)."""
        app = self.app
        response = self._oauth_call("POST", app.paths.introspect, form={
            "client_id": app.client_id, "client_secret": app.client_secret,
            "token": access_token, "token_type_hint": "access_token"})
        if response.status_code != 200:
            raise _oauth_error(response, None)
        return _token_info(response)

    def account_details(self, access_token: str) -> AccountDetails:
        path = self.app.paths.account_details
        response = self._oauth_call("GET", path, access_token=access_token)
        if response.status_code != 200:
            raise HubSpotError(f"HubSpot refused GET {path} "
                               f"({response.status_code}): {_error_message(response)}",
                               status=response.status_code)
        return _account_details(response, path)
