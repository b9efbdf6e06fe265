"""`HubSpotHook`: HubSpot's OAuth and REST API, configured from the `hubspot_default` connection.

Owns the HTTP session and HubSpot's protocol (token endpoint, error bodies, bearer auth, retries
on 401/429/5xx). Knows nothing about the ledger: where tokens are kept is the caller's business,
given to the hook as a `TokenSource`.

Why not `HttpHook`: it sends every connection extra as an HTTP header (ours are OAuth settings)
and raises on non-2xx before HubSpot's error body and `Retry-After` can be read.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import requests
import requests.adapters
import tenacity
import urllib3
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.hubapi.com"
DEFAULT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
# The v1 token endpoint is sunset on 2027-02-16; v3 takes every parameter in the form body.
TOKEN_PATH = "/oauth/v3/token"  # noqa: S105 - a path, not a secret
INTROSPECT_PATH = "/oauth/v3/token/introspect"
ACCOUNT_DETAILS_PATH = "/account-info/v3/details"
DEFAULT_SCOPES = ("oauth", "crm.objects.deals.read", "crm.objects.companies.read",
                  "crm.objects.line_items.read", "crm.objects.products.read",
                  "crm.objects.invoices.read")
TIMEOUT = (10.0, 60.0)  # connect, read (seconds)
# A whole response (connecting, sending, headers and body) must be done within this many
# seconds: the read time-out alone lets a server that sends a byte every few seconds hold a
# call for ever. HUBSPOT_LEDGER_RESPONSE_DEADLINE overrides it.
RESPONSE_DEADLINE = 120.0


def _timeout() -> tuple[float, float]:
    """Connect and read time-outs; HUBSPOT_LEDGER_READ_TIMEOUT overrides the read one."""
    return TIMEOUT[0], float(os.environ.get("HUBSPOT_LEDGER_READ_TIMEOUT", TIMEOUT[1]))


def response_deadline() -> float:
    """Seconds a whole response may take; HUBSPOT_LEDGER_RESPONSE_DEADLINE overrides it."""
    return float(os.environ.get("HUBSPOT_LEDGER_RESPONSE_DEADLINE", RESPONSE_DEADLINE))


class ResponseDeadlineExceeded(requests.Timeout):
    """A response was not complete within its total deadline (a server dripping its answer).
    The connection was cut; nothing of the answer was used."""


class _Watch:
    """One request's deadline: which connection carries it, and cutting that connection when
    the deadline strikes first (a blocked read then returns at once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connection: Any = None
        self.done = False
        self.fired = False

    def attach(self, connection: Any) -> None:
        with self.lock:
            self.connection = connection

    def strike(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
        self.cut()

    def cut(self) -> None:
        """Shut the connection's socket down if the deadline has struck (also called once
        the request is sent: the deadline may strike while the socket is being opened)."""
        with self.lock:
            sock = getattr(self.connection, "sock", None) if self.fired else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read has ended anyway

    def finish(self) -> None:
        with self.lock:
            self.done = True


_current = threading.local()  # the _Watch of the request this thread is sending, if any


class _WatchedConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)
        if watch is not None:
            watch.cut()


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)
        if watch is not None:
            watch.cut()


class _WatchedPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections let a request's `_Watch` find them."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # SOCKS managers keep their own pools
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


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


@dataclass(frozen=True)
class OAuthApp:
    """The deployment's HubSpot app (R-AUTH-1): never per customer."""

    api_base: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: tuple[str, ...]
    authorize_url: str

    def __repr__(self) -> str:  # the secret must never reach a log line
        return f"OAuthApp(api_base={self.api_base!r}, client_id={self.client_id!r}, ...)"


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
class Association:
    """One associated record and HubSpot's association type ids (e.g. 5 = primary company)."""

    to_id: str
    type_ids: frozenset[int]


@dataclass(frozen=True)
class AccountDetails:
    portal_id: int
    currency: str | None
    ui_domain: str
    time_zone: str | None


class RateLimiter(Protocol):
    """The portal's shared request budget (hubspot_ledger.ratelimit)."""

    def acquire(self, path: str) -> float: ...

    def backoff(self, path: str, seconds: float) -> None: ...


class HubSpotBudgetExhausted(HubSpotError):
    """The portal's daily API budget is nearly spent: stop, leave the rest to its other apps."""


class TokenSource(Protocol):
    """Hands the hook a valid access token; `refresh()` is called once after a 401."""

    def access_token(self) -> str: ...

    def refresh(self) -> str: ...


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


def _account_details(response: requests.Response) -> AccountDetails:
    """Account details (hubspot-api.md §1.5), checked: a portal id is a must; a currency, when
    given, must be an ISO code (the ledger stores nothing else)."""
    what = f"HubSpot's account details ({ACCOUNT_DETAILS_PATH})"
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


class HubSpotHook(BaseHook):
    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "http"
    hook_name = "HubSpot"

    def __init__(self, hubspot_conn_id: str = default_conn_name,
                 token_source: TokenSource | None = None,
                 limiter: RateLimiter | None = None) -> None:
        super().__init__()
        self.hubspot_conn_id = hubspot_conn_id
        self.token_source = token_source
        self.limiter = limiter
        self.requests_sent = 0
        self.search_cap = SEARCH_CAP  # HubSpot's; a test sandbox may use a smaller one

    @cached_property
    def app(self) -> OAuthApp:
        conn = self.get_connection(self.hubspot_conn_id)
        extra = conn.extra_dejson
        host = (conn.host or "").rstrip("/")
        if not host:
            api_base = DEFAULT_API_BASE
        elif "://" in host:
            api_base = host
        else:
            port = f":{conn.port}" if conn.port else ""
            api_base = f"{conn.schema or 'https'}://{host}{port}"
        return OAuthApp(api_base=api_base, client_id=conn.login or "",
                        client_secret=conn.password or "",
                        redirect_uri=str(extra.get("redirect_uri") or ""),
                        scopes=_scopes(extra.get("scopes")),
                        authorize_url=str(extra.get("authorize_url") or DEFAULT_AUTHORIZE_URL))

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = "hubspot-ledger/0.1"
        for prefix in ("http://", "https://"):
            session.mount(prefix, _DeadlineAdapter())
        return session

    def _http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange, done within `response_deadline()` seconds in all (on top of the
        connect and read time-outs, which bound each wait but not their sum). Past the deadline
        the connection is cut and ResponseDeadlineExceeded raised."""
        deadline = response_deadline()
        watch = _Watch()
        timer = threading.Timer(deadline, watch.strike)
        timer.daemon = True
        _current.watch = watch
        timer.start()
        started = time.monotonic()
        try:
            return self.session.request(method, url, timeout=_timeout(), **kwargs)
        except requests.RequestException:
            if watch.fired:
                raise ResponseDeadlineExceeded(
                    f"no complete answer within {deadline:g}s (cut after "
                    f"{time.monotonic() - started:.1f}s; HUBSPOT_LEDGER_RESPONSE_DEADLINE)"
                    ) from None
            raise
        finally:
            timer.cancel()
            watch.finish()
            _current.watch = None

    def get_conn(self) -> requests.Session:
        return self.session

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
        response = self._oauth_call("POST", TOKEN_PATH, form=body)
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
        response = self._oauth_call("POST", INTROSPECT_PATH, form={
            "client_id": app.client_id, "client_secret": app.client_secret,
            "token": access_token, "token_type_hint": "access_token"})
        if response.status_code != 200:
            raise _oauth_error(response, None)
        return _token_info(response)

    def account_details(self, access_token: str) -> AccountDetails:
        response = self._oauth_call("GET", ACCOUNT_DETAILS_PATH, access_token=access_token)
        if response.status_code != 200:
            raise HubSpotError(f"HubSpot refused GET {ACCOUNT_DETAILS_PATH} "
                               f"({response.status_code}): {_error_message(response)}",
                               status=response.status_code)
        return _account_details(response)

    # -- authenticated API calls --------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One HubSpot API call, retried on 429/5xx/network errors with backoff and jitter.

        A 401 refreshes the access token once through the token source, then repeats the call
        (tokens can expire mid-sync). Any other 4xx raises `HubSpotError` with HubSpot's
        message.
        """
        if self.token_source is None:
            raise HubSpotError("HubSpotHook.request needs a token source")
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            wait=_wait_retry_after_or_backoff,
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            result: dict[str, Any] = retrying(self._call_once, method, path, params, json_body)
        except _Transient as exc:
            raise HubSpotTemporaryError(f"{method} {path} still failing after {MAX_ATTEMPTS} "
                                        f"attempts: {exc}", status=exc.status) from None
        return result

    def _call_once(self, method: str, path: str, params: dict[str, Any] | None,
                   json_body: dict[str, Any] | None) -> dict[str, Any]:
        assert self.token_source is not None
        response = self._send(method, path, params, json_body, self.token_source.access_token())
        if response.status_code == 401:
            log.info("HubSpot answered 401 to %s %s: refreshing the access token once",
                     method, path)
            response = self._send(method, path, params, json_body, self.token_source.refresh())
        if response.status_code == 429 or response.status_code >= 500:
            transient = _Transient(response)
            if response.status_code == 429 and self.limiter is not None:
                # Never more than the cap, whatever HubSpot asked: the portal's other callers
                # (other tasks, runs and workers) wait at most that long because of this 429.
                self.limiter.backoff(path, min(transient.retry_after or 1.0,
                                               retry_after_cap()))
            if transient.asked is not None and transient.asked > retry_after_cap():
                # Waiting that long would hold a worker slot idle (86400: a whole day); the
                # task fails now as temporary and Airflow's retry comes back later.
                raise HubSpotTemporaryError(
                    f"HubSpot answered {response.status_code} to {method} {path} and asked to "
                    f"wait {transient.asked:.0f}s (Retry-After), longer than the "
                    f"{retry_after_cap():g}s a sync waits: HubSpot is unavailable for now; "
                    "Airflow retries the task later", status=response.status_code)
            raise transient
        _check_daily_budget(response)
        if response.status_code >= 400:
            raise HubSpotError(f"HubSpot refused {method} {path} ({response.status_code}): "
                               f"{_error_message(response)}", status=response.status_code)
        if response.status_code == 204 or not response.content:
            return {}
        body: dict[str, Any] = response.json()
        return body

    def _send(self, method: str, path: str, params: dict[str, Any] | None,
              json_body: dict[str, Any] | None, token: str) -> requests.Response:
        if self.limiter is not None:
            self.limiter.acquire(path)
        self.requests_sent += 1
        try:
            return self._http(method, f"{self.app.api_base}{path}", params=params,
                              json=json_body, headers={"Authorization": f"Bearer {token}"})
        except ResponseDeadlineExceeded as exc:
            raise _Transient(None, reason=str(exc)) from None
        except requests.RequestException as exc:
            raise _Transient(None, reason=f"{type(exc).__name__}") from None

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        _log_retry(state, "HubSpot call", MAX_ATTEMPTS)


    # -- CRM reads: each generator yields pages (lists of raw records) ---------------------

    def list_pages(self, object_type: str, properties: Sequence[str],
                   archived: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Every record of a type, by cursor paging (`GET /crm/v3/objects/{type}`)."""
        params: dict[str, Any] = {"limit": LIST_PAGE, "properties": ",".join(properties),
                                  "archived": str(archived).lower()}
        while True:
            body = self.request("GET", f"/crm/v3/objects/{object_type}", params=params)
            yield list(body.get("results", []))
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return
            params = {**params, "after": after}

    def search_pages(self, object_type: str, filters: Sequence[dict[str, Any]],
                     properties: Sequence[str], *,
                     any_of: Sequence[Sequence[dict[str, Any]]] = ()
                     ) -> Iterator[list[dict[str, Any]]]:
        """Every record matching `filters` (ANDed), past the search API's 10,000-result cap.

        `any_of` ORs alternative filter groups, each ANDed with `filters`.
        Sorted by `hs_object_id`; before paging would reach the cap, the query restarts with
        `hs_object_id > <last id seen>`, so no window is ever larger than the cap and nothing
        is skipped, whatever the other filters are.
        """
        last_id: str | None = None
        while True:
            window = list(filters)
            if last_id is not None:
                window.append({"propertyName": "hs_object_id", "operator": "GT",
                               "value": last_id})
            groups = [{"filters": [*window, *alt]} for alt in any_of] or [{"filters": window}]
            after = 0
            restart = False
            while True:
                body = self.request("POST", f"/crm/v3/objects/{object_type}/search", json_body={
                    "filterGroups": groups,
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    "properties": list(properties), "limit": SEARCH_PAGE, "after": str(after)})
                results = list(body.get("results", []))
                if results:
                    yield results
                    last_id = str(results[-1]["id"])
                next_after = (body.get("paging") or {}).get("next", {}).get("after")
                if not next_after:
                    break
                after = int(next_after)
                if after + SEARCH_PAGE > self.search_cap:
                    restart = True
                    break
            if not restart:
                return

    def batch_read(self, object_type: str, ids: Sequence[str], properties: Sequence[str],
                   *, archived: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Records by id, 100 per request. Ids HubSpot does not know are logged and left out.
        `archived=True` reads records in HubSpot's recycle bin instead of live ones."""
        params = {"archived": "true"} if archived else None
        for chunk in _chunks(ids, BATCH_READ):
            body = self.request("POST", f"/crm/v3/objects/{object_type}/batch/read",
                                params=params,
                                json_body={"inputs": [{"id": i} for i in chunk],
                                           "properties": list(properties)})
            for error in body.get("errors") or []:
                log.warning("HubSpot could not read %s %s: %s", object_type,
                            ",".join(map(str, (error.get("context") or {}).get("ids", []))),
                            error.get("message"))
            yield list(body.get("results", []))

    def batch_associations(self, from_type: str, to_type: str, ids: Sequence[str]
                           ) -> dict[str, list[Association]]:
        """`from id → [associations]` (v4 batch read, 1,000 ids per request, every page)."""
        found: dict[str, list[Association]] = {str(i): [] for i in ids}
        pending = [{"id": str(i)} for i in ids]
        while pending:
            next_round: list[dict[str, str]] = []
            for chunk in _chunks(pending, ASSOCIATION_BATCH):
                body = self.request(
                    "POST", f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                    json_body={"inputs": chunk})
                for result in body.get("results", []):
                    source = str(result["from"]["id"])
                    found.setdefault(source, []).extend(
                        Association(to_id=str(to["toObjectId"]),
                                    type_ids=frozenset(int(t["typeId"]) for t in
                                                       to.get("associationTypes", [])))
                        for to in result.get("to", []))
                    after = (result.get("paging") or {}).get("next", {}).get("after")
                    if after:
                        next_round.append({"id": source, "after": str(after)})
            pending = next_round
        return found


MAX_ATTEMPTS = 6
# HubSpot's documented maxima: the fewest requests for the most records.
LIST_PAGE = 100
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
BATCH_READ = 100
ASSOCIATION_BATCH = 1_000

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


BACKOFF = tenacity.wait_exponential_jitter(initial=1, max=60, jitter=1)
# OAuth and account calls (token endpoint, introspection, account details): a few quick tries
# ride out a blip (~4 s in all without Retry-After); a longer outage is Airflow's task retries'
# business, and a person connecting a portal should not wait minutes for an answer.
OAUTH_ATTEMPTS = 4
OAUTH_BACKOFF = tenacity.wait_exponential_jitter(initial=0.5, max=10, jitter=0.5)
# A Retry-After is honoured up to this many seconds: a longer one would hold a worker slot (or
# an operator's browser) idle; the retry after it is Airflow's. HUBSPOT_LEDGER_RETRY_AFTER_CAP
# overrides it (the portal's rate budget, hubspot_ledger.ratelimit, reads the same variable).
RETRY_AFTER_CAP = 60.0


def retry_after_cap() -> float:
    """The longest Retry-After honoured, in seconds (HUBSPOT_LEDGER_RETRY_AFTER_CAP)."""
    return float(os.environ.get("HUBSPOT_LEDGER_RETRY_AFTER_CAP", RETRY_AFTER_CAP))


def _retry_after_asked(header: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds, as asked (RFC 9110: a number of seconds or an HTTP date); None
    when absent or unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.replace(".", "", 1).isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return max(seconds, 0.0)


def retry_after_seconds(header: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds (RFC 9110: a number of seconds or an HTTP date), capped at
    `retry_after_cap()`; None when absent or unreadable."""
    seconds = _retry_after_asked(header, now)
    return None if seconds is None else min(seconds, retry_after_cap())


class _Transient(Exception):
    """A failure worth retrying: 429, 5xx, or no response at all."""

    def __init__(self, response: requests.Response | None, reason: str = "") -> None:
        self.status = response.status_code if response is not None else None
        self.retry_after: float | None = None  # what will be waited (capped)
        self.asked: float | None = None  # what HubSpot's Retry-After asked for
        if response is not None:
            reason = f"{response.status_code} {_error_message(response)}"
            self.asked = _retry_after_asked(response.headers.get("Retry-After"))
            self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if self.retry_after is None and response.status_code == 429:
                # HubSpot's 429s carry no Retry-After: wait out its rolling window instead.
                interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
                self.retry_after = min(int(interval) / 1000, retry_after_cap()) \
                    if interval and interval.isdigit() else 1.0
        super().__init__(reason)


def _wait_retry_after_or(backoff: tenacity.wait.wait_base
                         ) -> Callable[[tenacity.RetryCallState], float]:
    """Wait what HubSpot asked for (plus a little jitter), or else `backoff`."""
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        pause = float(backoff(state))
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after + pause % 1  # keep a little jitter
        return pause
    return wait


_wait_retry_after_or_backoff = _wait_retry_after_or(BACKOFF)


def _log_retry(state: tenacity.RetryCallState, what: str, attempts: int) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0
    log.warning("%s failed (%s); retry %d/%d in %.1fs", what, exc, state.attempt_number,
                attempts - 1, wait)


# Requests of the portal's daily budget this sync leaves unused (HubSpot's daily limit is shared
# by every app of the portal); HUBSPOT_LEDGER_DAILY_MARGIN overrides it.
DAILY_MARGIN = int(os.environ.get("HUBSPOT_LEDGER_DAILY_MARGIN", "1000"))


def _check_daily_budget(response: requests.Response) -> None:
    remaining = response.headers.get("X-HubSpot-RateLimit-Daily-Remaining", "")
    if remaining.isdigit() and int(remaining) < DAILY_MARGIN:
        raise HubSpotBudgetExhausted(
            f"HubSpot's daily API budget of this portal is nearly spent ({remaining} requests "
            f"left, margin {DAILY_MARGIN}); the sync stops here and the next run resumes")


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error_description") or body.get("status")
                   or response.reason)
    return response.reason or ""
