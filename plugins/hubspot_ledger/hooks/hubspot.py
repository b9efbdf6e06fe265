"""`HubSpotHook`: HubSpot's OAuth and REST API, configured from the `hubspot_default` connection.

Owns the HTTP session and HubSpot's protocol (token endpoint, error bodies, bearer auth, retries
on 401/429/5xx). Knows nothing about the ledger: where tokens are kept is the caller's business,
given to the hook as a `TokenSource`.

Why not `HttpHook`: it sends every connection extra as an HTTP header (ours are OAuth settings)
and raises on non-2xx before HubSpot's error body and `Retry-After` can be read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import requests
import tenacity
from airflow.sdk import BaseHook

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.hubapi.com"
DEFAULT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
# The v1 token endpoint is sunset on 2027-02-16; v3 takes every parameter in the form body.
TOKEN_PATH = "/oauth/v3/token"  # noqa: S105 - a path, not a secret
ACCOUNT_DETAILS_PATH = "/account-info/v3/details"
DEFAULT_SCOPES = ("oauth", "crm.objects.deals.read", "crm.objects.companies.read",
                  "crm.objects.line_items.read", "crm.objects.products.read",
                  "crm.objects.invoices.read")
TIMEOUT = (10.0, 60.0)  # connect, read (seconds)


def _timeout() -> tuple[float, float]:
    """Connect and read time-outs; HUBSPOT_LEDGER_READ_TIMEOUT overrides the read one."""
    return TIMEOUT[0], float(os.environ.get("HUBSPOT_LEDGER_READ_TIMEOUT", TIMEOUT[1]))


class HubSpotError(Exception):
    """A HubSpot call failed. `message` is written for an operator; it never contains tokens."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HubSpotAuthError(HubSpotError):
    """OAuth failed in a way only a person can fix (reconnect, fix the app's settings)."""


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


# HubSpot's token-endpoint statuses → what the operator must do (R-AUTH-5).
_OAUTH_MESSAGES = {
    "BAD_REDIRECT_URI": "HubSpot refused the redirect URI: the redirect_uri of the "
                        "hubspot_default connection must match the app's redirect URL exactly",
    "BAD_CLIENT_ID": "HubSpot does not know this app: check the client id (login) of the "
                     "hubspot_default connection",
    "BAD_CLIENT_SECRET": "HubSpot rejected the app's client secret: check the password of the "
                         "hubspot_default connection",
    "BAD_AUTH_CODE": "The HubSpot authorization code is invalid or was already used: "
                     "connect HubSpot again",
    "EXPIRED_AUTH_CODE": "The HubSpot authorization code has expired: connect HubSpot again",
    "BAD_REFRESH_TOKEN": "HubSpot access was revoked or has expired: reconnect HubSpot",
}


def _oauth_error(response: requests.Response) -> HubSpotAuthError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    status = str(body.get("status") or "")
    error = str(body.get("error") or "")
    message = _OAUTH_MESSAGES.get(status)
    if message is None and error == "invalid_client":
        message = "HubSpot rejected the app's client id or secret: check the hubspot_default " \
                  "connection"
    if message is None:
        detail = body.get("error_description") or body.get("message") or response.reason
        message = f"HubSpot OAuth failed ({response.status_code} {error or status}): {detail}"
    return HubSpotAuthError(message, status=response.status_code, code=status or error)


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
        return session

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

    def _token_request(self, form: dict[str, str]) -> TokenGrant:
        app = self.app
        body = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
        try:
            response = self.session.post(f"{app.api_base}{TOKEN_PATH}", data=body,
                                         timeout=_timeout())
        except requests.RequestException as exc:
            raise HubSpotError(f"HubSpot's token endpoint is unreachable: "
                               f"{type(exc).__name__}") from None
        if response.status_code >= 500:
            raise HubSpotError(f"HubSpot's token endpoint failed ({response.status_code}); "
                               "try again later", status=response.status_code)
        if response.status_code != 200:
            raise _oauth_error(response)
        data = response.json()
        return TokenGrant(access_token=data["access_token"], refresh_token=data["refresh_token"],
                          expires_in=int(data["expires_in"]),
                          scopes=tuple(data.get("scopes") or ()),
                          hub_id=int(data["hub_id"]) if data.get("hub_id") else None)

    def exchange_code(self, code: str) -> TokenGrant:
        """Authorization code → tokens (R-AUTH-3). Raises HubSpotAuthError saying what to fix."""
        grant = self._token_request({"grant_type": "authorization_code", "code": code,
                                     "redirect_uri": self.app.redirect_uri})
        missing = [s for s in self.app.scopes if grant.scopes and s not in grant.scopes]
        if missing:
            raise HubSpotAuthError(f"HubSpot did not grant the scopes {', '.join(missing)}: "
                                   "reconnect and approve every requested scope",
                                   code="MISSING_SCOPES")
        return grant

    def refresh_tokens(self, refresh_token: str) -> TokenGrant:
        """A new access token (R-AUTH-6); a revoked refresh token raises HubSpotAuthError."""
        return self._token_request({"grant_type": "refresh_token",
                                    "refresh_token": refresh_token})

    def account_details(self, access_token: str) -> AccountDetails:
        data = self._get_with_token(ACCOUNT_DETAILS_PATH, access_token)
        return AccountDetails(portal_id=int(data["portalId"]),
                              currency=data.get("companyCurrency") or None,
                              ui_domain=str(data.get("uiDomain") or "app.hubspot.com"),
                              time_zone=data.get("timeZone"))

    def _get_with_token(self, path: str, access_token: str) -> dict[str, Any]:
        try:
            response = self.session.get(f"{self.app.api_base}{path}", timeout=_timeout(),
                                        headers={"Authorization": f"Bearer {access_token}"})
        except requests.RequestException as exc:
            raise HubSpotError(f"HubSpot is unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise HubSpotError(f"HubSpot answered {response.status_code} to GET {path}",
                               status=response.status_code)
        result: dict[str, Any] = response.json()
        return result

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
            raise HubSpotError(f"{method} {path} still failing after {MAX_ATTEMPTS} attempts: "
                               f"{exc}", status=exc.status) from None
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
                self.limiter.backoff(path, transient.retry_after or 1.0)
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
            return self.session.request(method, f"{self.app.api_base}{path}", params=params,
                                        json=json_body, timeout=_timeout(),
                                        headers={"Authorization": f"Bearer {token}"})
        except requests.RequestException as exc:
            raise _Transient(None, reason=f"{type(exc).__name__}") from None

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("HubSpot call failed (%s); retry %d/%d in %.1fs", exc, state.attempt_number,
                    MAX_ATTEMPTS - 1, wait)


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

    def batch_read(self, object_type: str, ids: Sequence[str], properties: Sequence[str]
                   ) -> Iterator[list[dict[str, Any]]]:
        """Records by id, 100 per request. Ids HubSpot does not know are logged and left out."""
        for chunk in _chunks(ids, BATCH_READ):
            body = self.request("POST", f"/crm/v3/objects/{object_type}/batch/read",
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


class _Transient(Exception):
    """A failure worth retrying: 429, 5xx, or no response at all."""

    def __init__(self, response: requests.Response | None, reason: str = "") -> None:
        self.status = response.status_code if response is not None else None
        self.retry_after: float | None = None
        if response is not None:
            reason = f"{response.status_code} {_error_message(response)}"
            header = response.headers.get("Retry-After")
            if header and header.replace(".", "", 1).isdigit():
                self.retry_after = float(header)
            elif response.status_code == 429:
                # HubSpot's 429s carry no Retry-After: wait out its rolling window instead.
                interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
                self.retry_after = int(interval) / 1000 if interval and interval.isdigit() \
                    else 1.0
        super().__init__(reason)


def _wait_retry_after_or_backoff(state: tenacity.RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    backoff = float(BACKOFF(state))
    if isinstance(exc, _Transient) and exc.retry_after is not None:
        return max(exc.retry_after, 0.0) + backoff % 1  # keep a little jitter
    return backoff


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
