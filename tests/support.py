"""What many test modules share: the deployment's HubSpot app pointing at a sandbox, and a
fixed token. (Fixtures built on these are in tests/conftest.py: `sandbox_server`, `sandbox`.)

The suite runs at the hook's default HubSpot API version (`hubspot_default` without an
`api_version` extra), or at the one `HUBSPOT_API_VERSION` names (`HUBSPOT_API_VERSION=v3
pytest …`; `make test` runs the sync end-to-end tests once more at v3). A test asserting
on the paths HubSpot received compares them with `hubspot_paths()`, the paths of that version;
the sandbox's endpoint names are the same at every version.

Importable as `support` (pytest puts tests/ on the path, pyproject `pythonpath`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger.hooks.hubspot_paths import ApiPaths, api_paths
from hubspot_ledger_tools.sandbox.testing import SandboxServer
from hubspot_ledger_tools.sandbox.timefmt import parse_time

HUBSPOT_CONN_ENV = "AIRFLOW_CONN_HUBSPOT_DEFAULT"
API_VERSION_ENV = "HUBSPOT_API_VERSION"
T = TypeVar("T")


def api_version_extra() -> dict[str, str]:
    """The `api_version` extra of the suite's `hubspot_default`: none (the hook's default)
    unless HUBSPOT_API_VERSION names one."""
    version = os.environ.get(API_VERSION_ENV, "").strip()
    return {"api_version": version} if version else {}


def hubspot_paths() -> ApiPaths:
    """The HubSpot paths the suite's hooks call (its API version's)."""
    return api_paths(api_version_extra().get("api_version"))


def check_api_version(sb: SandboxServer) -> None:
    """Every HubSpot API call in the sandbox's log went to the suite's API version: the dated
    paths, or with v3 the legacy /crm/v3, /crm/v4, /oauth/v3 ones (the deal pipelines, which
    have no dated path, aside). What makes a pass at a version a pass at that version."""
    paths = hubspot_paths()
    family = {paths.version} if paths.dated else {"v3", "v4"}
    elsewhere = sorted({f"{c['method']} {c['path']}" for c in sb.requests()
                        if c["api_version"] is not None and c["api_version"] not in family
                        and not c["endpoint"].startswith("GET /crm/v3/pipelines/")})
    assert elsewhere == [], f"calls outside API version {paths.version}: {elsewhere}"


def wait_until(condition: Callable[[], T], *, timeout: float = 30.0, what: str = "",
               every: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail once `timeout`
    seconds have passed. A deadline on observable state, never a pause that orders two things
    by itself: the test goes on as soon as the state is there, however slow the machine."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g}s: {what or condition}")
        time.sleep(every)
    return result


def hubspot_connection(sb: SandboxServer, **overrides: Any) -> str:
    """The `hubspot_default` connection (JSON) of a deployment whose HubSpot app is the sandbox.

    `overrides`: `redirect_uri` and `scopes` go to the extras, anything else (login, password,
    host) replaces the connection's field.
    """
    extra = {"redirect_uri": overrides.pop("redirect_uri", sb.redirect_uri),
             "authorize_url": f"{sb.url}/oauth/authorize", **api_version_extra()}
    if "scopes" in overrides:
        extra["scopes"] = overrides.pop("scopes")
    return json.dumps({"conn_type": "http", "host": sb.url, "login": sb.client_id,
                       "password": sb.client_secret, "extra": extra, **overrides})


def use_sandbox_app(mp: pytest.MonkeyPatch, sb: SandboxServer) -> None:
    """`hubspot_default` pointing at the sandbox's OAuth app, and a Fernet key of the test's
    own for the tokens it stores (R-AUTH-1: the app belongs to the deployment)."""
    mp.setenv(KEYS_ENV, Fernet.generate_key().decode())
    mp.setenv(HUBSPOT_CONN_ENV, hubspot_connection(sb))


def logged(sb: SandboxServer, endpoint: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The sandbox's log entries of `endpoint`, once each is complete: the sandbox finishes an
    entry (status, duration) just after its answer has gone out, so a test reading the log
    right after a call could see it unfinished."""
    def complete() -> list[dict[str, Any]]:
        entries = sb.requests(endpoint=endpoint)
        return entries if all(e["duration_ms"] is not None for e in entries) else []
    return wait_until(complete, timeout=timeout, what=f"the sandbox's log of {endpoint}")


def seconds_between(earlier: dict[str, Any], later: dict[str, Any]) -> float:
    """Seconds between two calls as the sandbox received them (entries of its request log):
    when a client waited, measured where the wait shows, without a stopwatch in the test."""
    start, end = parse_time(earlier["time"]), parse_time(later["time"])
    assert start is not None and end is not None, (earlier, later)
    return (end - start) / 1000


def consent(consent_url: str, redirect_uri: str | None = None) -> tuple[str, str]:
    """Open a consent URL as the customer's browser would, stopping at HubSpot's redirect back
    to the app: (code, state). With `redirect_uri`, the redirect must go exactly there."""
    response = requests.get(consent_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    location = urlparse(response.headers["Location"])
    if redirect_uri is not None:
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    query = parse_qs(location.query)
    assert set(query) == {"code", "state"}, query.keys()
    return query["code"][0], query["state"][0]


class StaticToken:
    """A token source that always answers the same access token (no OAuth round trip)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh(self) -> str:
        return self.token
