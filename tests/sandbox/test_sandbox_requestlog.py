"""The request log tests read: fields, filters, `since` cursors, and no secrets."""

from __future__ import annotations

import pytest
import requests

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration


def test_entries_describe_each_call(sb: SandboxServer, api: Api) -> None:
    deal = api.list_all("deals")[0]["id"]
    api.get(f"/crm/v3/objects/deals/{deal}", params={"properties": "dealname"})
    api.search("line_items", filterGroups=[], limit=5)
    api.post("/crm/v4/associations/deals/companies/batch/read", json={"inputs": [{"id": deal}]})
    api.get("/crm/v3/objects/0-53")
    log = sb.requests()
    assert [e["endpoint"] for e in log] == [
        "GET /crm/v3/objects/deals", "GET /crm/v3/objects/deals/{id}",
        "POST /crm/v3/objects/line_items/search",
        "POST /crm/v4/associations/deals/companies/batch/read", "GET /crm/v3/objects/invoices"]
    read = log[1]
    assert read["method"] == "GET" and read["path"] == f"/crm/v3/objects/deals/{deal}"
    assert read["query"] == {"properties": "dealname"} and read["object_type"] == "deals"
    assert read["portal_id"] == sb.portal_id and read["status"] == 200
    assert read["duration_ms"] >= 0 and read["time"].endswith("Z") and read["fault"] is None
    assert log[2]["body"] == {"filterGroups": [], "limit": 5}
    assert log[3]["to_object_type"] == "companies" and log[3]["inputs"] == 1
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)


def test_filters_and_since(sb: SandboxServer, api: Api) -> None:
    api.get("/crm/v3/objects/deals")
    mark = sb.last_seq()
    api.get("/crm/v3/objects/companies")
    api.get("/crm/v3/objects/deals")
    assert [e["endpoint"] for e in sb.requests(since=mark)] == [
        "GET /crm/v3/objects/companies", "GET /crm/v3/objects/deals"]
    assert len(sb.requests(endpoint="GET /crm/v3/objects/deals")) == 2
    assert len(sb.requests(object_type="companies")) == 1
    assert sb.requests(portal_id=1) == []
    sb.clear_requests()
    assert sb.requests() == []
    api.get("/crm/v3/objects/deals")
    assert sb.requests()[0]["seq"] == mark + 3  # numbering goes on after a clear


def test_failures_are_logged_too(sb: SandboxServer, api: Api) -> None:
    api.get("/crm/v3/objects/deals", token="wrong")
    sb.add_fault(status=503, nth=1)
    api.get("/crm/v3/objects/deals")
    unauthenticated, faulted = sb.requests()
    assert unauthenticated["status"] == 401 and unauthenticated["portal_id"] is None
    assert faulted["status"] == 503 and faulted["fault"] == "fault-1"


def test_no_secrets_in_the_log(sb: SandboxServer) -> None:
    tokens = sb.connect()
    requests.post(f"{sb.url}/oauth/v1/token", timeout=10, params={
        "client_secret": sb.client_secret, "refresh_token": tokens["refresh_token"]},
        data={"grant_type": "refresh_token", "client_id": sb.client_id})
    requests.delete(f"{sb.url}/oauth/v1/refresh-tokens/{tokens['refresh_token']}", timeout=10)
    text = repr(sb.requests())
    for secret in (sb.client_secret, tokens["refresh_token"], tokens["access_token"]):
        assert secret not in text
    assert "/oauth/v1/refresh-tokens/***" in text
