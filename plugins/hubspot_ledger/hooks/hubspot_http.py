"""HubSpotHook's transport: one `requests.Session` per thread, a whole-response deadline, and
the one retry layer for HubSpot's transient answers (429, 5xx, time-outs, resets).

Retries: tenacity here, for what a few seconds cure; what is left is Airflow's task retries
(the hook raises `HubSpotTemporaryError`). Nothing else retries a HubSpot call.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import requests.adapters
import tenacity
import urllib3

from hubspot_ledger.hooks.hubspot_errors import HubSpotBudgetExhausted, _error_message

log = logging.getLogger("hubspot_ledger.hooks.hubspot")

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


class _Watched:
    """Mixed into urllib3's connections: the request this thread sends is watched (its socket
    attached to the `_Watch`, which can cut it when the response deadline passes)."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]
        if watch is not None:
            watch.cut()


class _WatchedConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


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

MAX_ATTEMPTS = 6

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



USER_AGENT = "hubspot-ledger/0.1"


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    for prefix in ("http://", "https://"):
        session.mount(prefix, _DeadlineAdapter())
    return session


class ThreadSessions:
    """One `requests.Session` per thread (a Session is not thread-safe): the step's thread, its
    read-ahead threads and the hook's request threads each get their own."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = new_session()
            self._local.session = session
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._all = self._all, []
        for session in sessions:
            session.close()


def exchange(session: requests.Session, method: str, url: str, **kwargs: Any
             ) -> requests.Response:
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
        return session.request(method, url, timeout=_timeout(), **kwargs)
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
