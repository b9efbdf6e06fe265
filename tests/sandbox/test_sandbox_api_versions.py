"""Both path families of HubSpot's API (issue 14 item 5, hubspot-api.md §0): the dated
`/crm/objects/2026-03`, `/crm/associations/2026-03`, `/oauth/2026-03`, `/account-info/2026-03`
answer exactly like the legacy `/crm/v3/objects`, `/crm/v4/associations`, `/oauth/v3`,
`/account-info/v3`. The log keeps the path as sent and its version; endpoint names, fault rules,
rate limits and latency classes are the same at either version."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from hubspot_ledger_tools.sandbox.latency import endpoint_class
from hubspot_ledger_tools.sandbox.routing import classify
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration

DATED = "2026-03"
# (method, legacy path, dated path, body)
CALLS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/crm/v3/objects/deals", "/crm/objects/2026-03/deals", None),
    ("POST", "/crm/v3/objects/line_items/search", "/crm/objects/2026-03/line_items/search",
     {"filterGroups": [], "limit": 5, "sorts": [{"propertyName": "hs_object_id",
                                                 "direction": "ASCENDING"}]}),
    ("POST", "/crm/v3/objects/deals/batch/read", "/crm/objects/2026-03/deals/batch/read",
     {"inputs": [{"id": "1"}, {"id": "999999"}], "properties": ["dealname"]}),
    ("POST", "/crm/v4/associations/deals/companies/batch/read",
     "/crm/associations/2026-03/deals/companies/batch/read", {"inputs": [{"id": "1"}]}),
    ("GET", "/account-info/v3/details", "/account-info/2026-03/details", None),
]
TIMES = ("startedAt", "completedAt", "requestedAt")


def _answer(api: Api, method: str, path: str, body: dict[str, Any] | None) -> Any:
    response = api.request(method, path, json=body, params={"limit": 2} if method == "GET"
                           and "objects" in path else None)
    assert response.status_code in (200, 207), response.text
    answer = response.json()
    for key in TIMES:
        answer.pop(key, None)
    link = (answer.get("paging") or {}).get("next", {}).pop("link", None)
    return answer, link


def test_the_dated_paths_answer_like_the_legacy_ones(sb: SandboxServer, api: Api) -> None:
    for method, legacy, dated, body in CALLS:
        legacy_answer, legacy_link = _answer(api, method, legacy, body)
        dated_answer, dated_link = _answer(api, method, dated, body)
        assert dated_answer == legacy_answer, dated
        if legacy_link:  # the list's paging link stays in the family it was asked in
            assert legacy_link.startswith(f"{sb.url}{legacy}?")
            assert dated_link.startswith(f"{sb.url}{dated}?")


def test_the_log_keeps_the_path_as_sent_under_a_version_neutral_endpoint(
        sb: SandboxServer, api: Api) -> None:
    for method, legacy, dated, body in CALLS:
        _answer(api, method, legacy, body)
        _answer(api, method, dated, body)
    log = sb.requests()
    for (method, legacy, dated, _), (old, new) in zip(CALLS, zip(log[::2], log[1::2],
                                                                   strict=True), strict=True):
        assert (old["path"], new["path"]) == (legacy, dated)
        assert old["endpoint"] == new["endpoint"] and old["endpoint"].startswith(method)
        assert old["api_version"] in ("v3", "v4") and new["api_version"] == DATED
        assert (old["object_type"], old["to_object_type"]) == \
            (new["object_type"], new["to_object_type"])
    assert log[1]["endpoint"] == "GET /crm/v3/objects/deals"


def test_the_dated_token_endpoint_is_logged_as_the_token_endpoint(sb: SandboxServer) -> None:
    code = sb.authorize()
    tokens = sb.exchange_code(code, version=DATED)
    refreshed = requests.post(f"{sb.url}/oauth/{DATED}/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": sb.client_id, "client_secret": sb.client_secret})
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]
    token_calls = sb.requests(endpoint="POST /oauth/v3/token")
    assert [(c["path"], c["api_version"], c["grant_type"]) for c in token_calls] == [
        (f"/oauth/{DATED}/token", DATED, "authorization_code"),
        (f"/oauth/{DATED}/token", DATED, "refresh_token")]


def test_fault_rules_hold_at_either_version(sb: SandboxServer, api: Api) -> None:
    sb.set_faults([{"path": "/crm/v3/objects/deals*", "status": 503},
                   {"path": "/crm/associations/2026-03/*", "status": 502},
                   {"endpoint": "GET /account-info/v3/details", "status": 500}])
    assert api.get("/crm/objects/2026-03/deals").status_code == 503
    assert api.get("/crm/v3/objects/deals").status_code == 503
    assert api.post("/crm/v4/associations/deals/companies/batch/read",
                    json={"inputs": []}).status_code == 200  # dated glob, legacy call
    assert api.post("/crm/associations/2026-03/deals/companies/batch/read",
                    json={"inputs": []}).status_code == 502
    assert api.get("/account-info/2026-03/details").status_code == 500
    assert api.get("/crm/objects/2026-03/companies").status_code == 200


def test_rate_limits_and_latency_treat_both_families_alike() -> None:
    for method, legacy, dated, _ in CALLS:
        old, new = classify(method, legacy), classify(method, dated)
        assert (old.endpoint, old.search, old.scopes, old.kind) == \
            (new.endpoint, new.search, new.scopes, new.kind)
        assert endpoint_class(old.endpoint) == endpoint_class(new.endpoint)
    assert classify("POST", "/crm/objects/2026-03/0-3/search").search  # the search budget
    assert classify("POST", f"/oauth/{DATED}/token/introspect").endpoint == \
        "POST /oauth/v3/token/introspect"
