"""Per-portal rate limits: the rolling window with its headers, search's own budget, 429s."""

from __future__ import annotations

import pytest
import requests
from support import wait_until

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration

DEALS = "/crm/v3/objects/deals"


def test_hubspot_defaults(sb: SandboxServer, api: Api) -> None:
    config = sb.config()
    assert (config["rate_limit"], config["rate_window"], config["search_rate"]) == (110, 10, 5)
    response = api.get(DEALS)
    assert response.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_rolling_window_headers_429_and_recovery(sb: SandboxServer, api: Api) -> None:
    sb.update_config(rate_limit=4, rate_window=1.0)
    remaining = [int(api.get(DEALS).headers["X-HubSpot-RateLimit-Remaining"]) for _ in range(4)]
    assert remaining == [3, 2, 1, 0]
    refused = api.get(DEALS)
    assert refused.status_code == 429
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "4"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
    body = refused.json()
    assert body == {"status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT", "category": "RATE_LIMITS",
                    "policyName": "TEN_SECONDLY_ROLLING",
                    "correlationId": refused.headers["X-HubSpot-Correlation-Id"]}
    # Once the one-second window has rolled on (refused calls do not use the budget).
    wait_until(lambda: api.get(DEALS).status_code == 200, timeout=10,
               what="the rolling window frees a call")


def test_search_has_its_own_budget_and_no_headers(sb: SandboxServer, api: Api) -> None:
    sb.update_config(rate_limit=3, rate_window=5, search_rate=2)
    ok = [api.search("deals") for _ in range(2)]
    assert all(r.status_code == 200 for r in ok)
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in ok[0].headers)
    refused = api.search("deals")
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "SECONDLY"
    assert refused.json()["message"] == "You have reached your secondly limit."
    assert api.get(DEALS).headers["X-HubSpot-RateLimit-Remaining"] == "2"  # untouched by search
    wait_until(lambda: api.search("deals").status_code == 200, timeout=10,
               what="the search budget frees a call")


def test_oauth_and_admin_calls_are_not_counted(sb: SandboxServer, api: Api) -> None:
    sb.update_config(rate_limit=2, rate_window=5)
    for _ in range(3):
        tokens = sb.connect()
        refreshed = requests.post(f"{sb.url}/oauth/v3/token", timeout=10, data={
            "grant_type": "refresh_token", "client_id": sb.client_id,
            "client_secret": sb.client_secret, "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        sb.requests()
    assert api.get(DEALS).headers["X-HubSpot-RateLimit-Remaining"] == "1"


def test_limits_are_per_portal(sb: SandboxServer, api: Api) -> None:
    sb.update_config(rate_limit=2, rate_window=5)
    sb.add_portal(portal_id=5150)
    other = Api(sb.url, sb.issue_tokens(portal_id=5150)["access_token"])
    assert [api.get(DEALS).status_code for _ in range(3)] == [200, 200, 429]
    assert other.get(DEALS).status_code == 200
    # A second token of the same portal shares the portal's budget.
    same_portal = Api(sb.url, sb.issue_tokens()["access_token"])
    assert same_portal.get(DEALS).status_code == 429
