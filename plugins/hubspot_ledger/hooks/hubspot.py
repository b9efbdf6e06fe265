"""`HubSpotHook`: HubSpot's OAuth and REST API, configured from the `hubspot_default` connection.

Owns HubSpot's protocol (token endpoint, error bodies, bearer auth, retries on 401/429/5xx) and
no business logic. Knows nothing about the ledger: where tokens are kept is the caller's
business, given to the hook as a `TokenSource`; the portal's request budget is a `RateLimiter`.

The hook is assembled from small modules: `hubspot_oauth` (OAuth and account calls),
`hubspot_crm` (paging, batch reads, associations, requests in flight), `hubspot_http` (one
session per thread, the response deadline, the retry policy), `hubspot_errors`. Every name the
rest of the code used from this module is still importable from here.

Why not `HttpHook`: it sends every connection extra as an HTTP header (ours are OAuth settings)
and raises on non-2xx before HubSpot's error body and `Retry-After` can be read.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from functools import cached_property
from typing import Any, Protocol

import requests
import tenacity
from airflow.sdk import BaseHook

from hubspot_ledger.hooks.hubspot_crm import (
    ASSOCIATION_BATCH,
    BATCH_READ,
    LIST_PAGE,
    MAX_IN_FLIGHT,
    SEARCH_CAP,
    SEARCH_PAGE,
    Association,
    HubSpotCrmReads,
)
from hubspot_ledger.hooks.hubspot_errors import (
    HubSpotAppRejected,
    HubSpotAuthError,
    HubSpotBudgetExhausted,
    HubSpotError,
    HubSpotMalformedResponse,
    HubSpotRefreshTokenRevoked,
    HubSpotTemporaryError,
    _error_message,
)
from hubspot_ledger.hooks.hubspot_http import (
    BACKOFF,
    DAILY_MARGIN,
    MAX_ATTEMPTS,
    OAUTH_ATTEMPTS,
    OAUTH_BACKOFF,
    RESPONSE_DEADLINE,
    RETRY_AFTER_CAP,
    TIMEOUT,
    ResponseDeadlineExceeded,
    ThreadSessions,
    _check_daily_budget,
    _log_retry,
    _Transient,
    _wait_retry_after_or_backoff,
    exchange,
    response_deadline,
    retry_after_cap,
    retry_after_seconds,
)
from hubspot_ledger.hooks.hubspot_oauth import (
    ACCOUNT_DETAILS_PATH,
    APP_REFUSED,
    DEFAULT_API_BASE,
    DEFAULT_AUTHORIZE_URL,
    DEFAULT_SCOPES,
    INTROSPECT_PATH,
    REVOKED_MESSAGE,
    TOKEN_PATH,
    AccountDetails,
    HubSpotOAuth,
    OAuthApp,
    TokenGrant,
    TokenInfo,
    _scopes,
)
from hubspot_ledger.hooks.hubspot_paths import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    ApiPaths,
    UnknownApiVersion,
    api_paths,
)
from hubspot_ledger.ratelimit import DailyBudgetSpent

__all__ = [
    "ACCOUNT_DETAILS_PATH", "API_VERSIONS", "APP_REFUSED", "ASSOCIATION_BATCH", "BACKOFF",
    "BATCH_READ", "DAILY_MARGIN", "DEFAULT_API_BASE", "DEFAULT_API_VERSION",
    "DEFAULT_AUTHORIZE_URL", "DEFAULT_SCOPES", "INTROSPECT_PATH", "LIST_PAGE", "MAX_ATTEMPTS",
    "OAUTH_ATTEMPTS", "OAUTH_BACKOFF", "RESPONSE_DEADLINE", "RETRY_AFTER_CAP", "REVOKED_MESSAGE",
    "SEARCH_CAP", "SEARCH_PAGE", "TIMEOUT", "TOKEN_PATH", "AccountDetails", "ApiPaths",
    "Association", "HubSpotAppRejected", "HubSpotAuthError", "HubSpotBudgetExhausted",
    "HubSpotError", "HubSpotHook", "HubSpotMalformedResponse", "HubSpotRefreshTokenRevoked",
    "HubSpotTemporaryError", "OAuthApp", "RateLimiter", "ResponseDeadlineExceeded", "TokenGrant",
    "TokenInfo", "TokenSource", "UnknownApiVersion", "response_deadline", "retry_after_cap",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)


def max_in_flight() -> int:
    """Requests of one hook in flight at once (HUBSPOT_LEDGER_MAX_IN_FLIGHT, default 6)."""
    return max(int(os.environ.get("HUBSPOT_LEDGER_MAX_IN_FLIGHT", MAX_IN_FLIGHT)), 1)


class RateLimiter(Protocol):
    """The portal's shared request budget (hubspot_ledger.ratelimit)."""

    def acquire(self, path: str) -> float: ...

    def backoff(self, path: str, seconds: float) -> None: ...


class TokenSource(Protocol):
    """Hands the hook a valid access token; `refresh()` is called once after a 401."""

    def access_token(self) -> str: ...

    def refresh(self) -> str: ...


class HubSpotHook(HubSpotOAuth, HubSpotCrmReads, BaseHook):
    """HubSpot's API for the rest of the code: the OAuth calls (`HubSpotOAuth`), the CRM reads
    (`HubSpotCrmReads`) and, here, the authenticated request under the portal's budget."""

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "http"
    hook_name = "HubSpot"

    def __init__(self, hubspot_conn_id: str = default_conn_name,
                 token_source: TokenSource | None = None,
                 limiter: RateLimiter | None = None, *,
                 api_version: str | None = None) -> None:
        super().__init__()
        self.hubspot_conn_id = hubspot_conn_id
        # Given here (checked now), else the connection's `api_version` extra, checked as the
        # connection is read, before any request (hubspot_paths).
        self._api_paths = api_paths(api_version) if api_version is not None else None
        self.token_source = token_source
        self.limiter = limiter
        self._sent = itertools.count(1)  # next() is atomic under the GIL: threads share it
        self._sent_so_far = 0
        self.search_cap = SEARCH_CAP  # HubSpot's; a test sandbox may use a smaller one
        self.max_in_flight = max_in_flight()
        self._sessions = ThreadSessions()
        self._token_lock = threading.Lock()

    @property
    def requests_sent(self) -> int:
        """Requests sent so far by every thread of this hook."""
        return self._sent_so_far

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
                        authorize_url=str(extra.get("authorize_url") or DEFAULT_AUTHORIZE_URL),
                        paths=self._api_paths or api_paths(extra.get("api_version")))

    @property
    def paths(self) -> ApiPaths:
        """The paths of the deployment's HubSpot API version (hubspot_paths)."""
        return self._api_paths or self.app.paths

    @property
    def session(self) -> requests.Session:
        """This thread's session (a Session is not thread-safe; the hook's threads each have
        their own)."""
        return self._sessions.get()

    def _http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return exchange(self.session, method, url, **kwargs)

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        """Stop the request threads and close every thread's session."""
        self.close_pools()
        self._sessions.close()

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
        with self._token_lock:  # one thread refreshes; the others then read the new token
            token = self.token_source.access_token()
        response = self._send(method, path, params, json_body, token)
        if response.status_code == 401:
            log.info("HubSpot answered 401 to %s %s: refreshing the access token once",
                     method, path)
            with self._token_lock:
                token = self.token_source.refresh()
            response = self._send(method, path, params, json_body, token)
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
            try:
                self.limiter.acquire(path)
            except DailyBudgetSpent as exc:
                raise HubSpotBudgetExhausted(str(exc)) from None
        self._sent_so_far = next(self._sent)
        try:
            return self._http(method, f"{self.app.api_base}{path}", params=params,
                              json=json_body, headers={"Authorization": f"Bearer {token}"})
        except ResponseDeadlineExceeded as exc:
            raise _Transient(None, reason=str(exc)) from None
        except requests.RequestException as exc:
            raise _Transient(None, reason=f"{type(exc).__name__}") from None

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        _log_retry(state, "HubSpot call", MAX_ATTEMPTS)
