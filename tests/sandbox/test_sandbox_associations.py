"""Associations v4: batch read, per-record lists, type ids and labels, paging, 207 errors."""

from __future__ import annotations

from typing import Any

import pytest

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration


def batch(api: Api, from_type: str, to_type: str, inputs: list[dict[str, str]]
          ) -> tuple[int, dict[str, Any]]:
    response = api.post(f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                        json={"inputs": inputs})
    return response.status_code, response.json()


def type_ids(entry: dict[str, Any]) -> list[int]:
    return [t["typeId"] for t in entry["associationTypes"]]


def test_deal_companies_primary_and_unlabeled(api: Api) -> None:
    deals = [d["id"] for d in api.list_all("deals")]
    status, body = batch(api, "deals", "companies", [{"id": i} for i in deals])
    assert status == 207 and body["status"] == "COMPLETE"
    assert body["startedAt"] and body["completedAt"]
    several = [r for r in body["results"] if len(r["to"]) > 1]
    assert several, "the tiny portal has a deal with several companies"
    for result in body["results"]:
        primaries = [t for t in result["to"] if 5 in type_ids(t)]
        assert len(primaries) == 1
        for target in result["to"]:
            assert isinstance(target["toObjectId"], int)
            assert 341 in type_ids(target)
            labels = {t["typeId"]: t["label"] for t in target["associationTypes"]}
            assert labels.get(5, "Primary") == "Primary" and labels[341] is None
            assert {t["category"] for t in target["associationTypes"]} == {"HUBSPOT_DEFINED"}
    without = set(deals) - {r["from"]["id"] for r in body["results"]}
    assert body["numErrors"] == len(without) == len(body["errors"])
    error = body["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    deal_id = error["context"]["fromObjectId"][0]
    assert deal_id in without
    assert error["message"] == f"No company is associated with deal {deal_id}."


def test_reverse_direction_and_other_pairs(sb: SandboxServer, api: Api) -> None:
    invoices = [{"id": i["id"]} for i in api.list_all("invoices")]
    assert batch(api, "invoices", "contacts", invoices)[0] == 403  # needs the contacts scope
    api = Api(sb.url, sb.issue_tokens(scopes=[*sb.scopes, "crm.objects.contacts.read"])[
        "access_token"])
    companies = [c["id"] for c in api.list_all("companies")]
    _, body = batch(api, "companies", "deals", [{"id": i} for i in companies])
    ids = {t for r in body["results"] for target in r["to"] for t in type_ids(target)}
    assert ids == {6, 342}
    expected = {("deals", "line_items"): {19}, ("line_items", "deals"): {20},
                ("invoices", "line_items"): {409}, ("line_items", "invoices"): {410},
                ("invoices", "companies"): {179}, ("companies", "invoices"): {180},
                ("invoices", "deals"): {175}, ("deals", "invoices"): {176},
                ("invoices", "contacts"): {177}}
    for (source, target), wanted in expected.items():
        sources = [r["id"] for r in api.list_all(source)]
        status, body = batch(api, source, target, [{"id": i} for i in sources])
        assert status in (200, 207), body
        found = {t for r in body["results"] for to in r["to"] for t in type_ids(to)}
        assert found == wanted, (source, target)


def test_object_type_ids_work_in_paths(api: Api) -> None:
    deals = [{"id": d["id"]} for d in api.list_all("deals")]
    assert batch(api, "0-3", "0-2", deals)[1]["results"] == \
        batch(api, "deals", "companies", deals)[1]["results"]


def test_per_record_list_with_paging(sb: SandboxServer, api: Api) -> None:
    line_items = [li["id"] for li in api.list_all("line_items")][:7]
    deal = sb.upsert("deals", {"dealname": "Big order", "dealstage": "closedwon"},
                     associations={"line_items": line_items})
    path = f"/crm/v4/objects/deals/{deal['id']}/associations/line_items"
    everything = api.get(path).json()
    assert [str(r["toObjectId"]) for r in everything["results"]] == sorted(line_items, key=int)
    assert "paging" not in everything
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = api.get(path, params=params).json()
        assert len(page["results"]) <= 3
        seen += [r["toObjectId"] for r in page["results"]]
        if "paging" not in page:
            break
        params["after"] = page["paging"]["next"]["after"]
    assert [str(i) for i in seen] == sorted(line_items, key=int)
    assert all(type_ids(r) == [19] for r in everything["results"])
    assert api.get("/crm/v4/objects/deals/1/associations/companies").json() == {"results": []}


def test_batch_read_pages_each_input(sb: SandboxServer, api: Api) -> None:
    sb.update_config(association_page_size=2)
    line_items = [li["id"] for li in api.list_all("line_items")][:5]
    deal = sb.upsert("deals", {"dealname": "Paged", "dealstage": "closedwon"},
                     associations={"line_items": line_items})
    seen: list[str] = []
    inputs = [{"id": deal["id"]}]
    while inputs:
        _, body = batch(api, "deals", "line_items", inputs)
        (result,) = body["results"]
        seen += [str(t["toObjectId"]) for t in result["to"]]
        after = result.get("paging", {}).get("next", {}).get("after")
        inputs = [{"id": deal["id"], "after": after}] if after else []
    assert seen == sorted(line_items, key=int)


def test_batch_limits_and_archived_targets(sb: SandboxServer, api: Api) -> None:
    status, body = batch(api, "deals", "companies", [{"id": str(i)} for i in range(1001)])
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    deals = api.list_all("deals", associations="companies")
    deal = next(d for d in deals if len(d.get("associations", {}).get("companies", {})
                                        .get("results", [])) == 2)
    company = deal["associations"]["companies"]["results"][0]["id"]
    sb.archive("companies", company)
    status, body = batch(api, "deals", "companies", [{"id": deal["id"]}])
    assert status == 207 and body["results"] == []


def test_primary_is_unique(sb: SandboxServer, api: Api) -> None:
    companies = [c["id"] for c in api.list_all("companies")]
    deal = sb.upsert("deals", {"dealname": "Two companies", "dealstage": "closedwon"},
                     associations={"companies": [{"id": companies[1], "primary": True},
                                                 companies[2]]})
    _, body = batch(api, "deals", "companies", [{"id": deal["id"]}])
    by_company = {str(t["toObjectId"]): type_ids(t) for t in body["results"][0]["to"]}
    assert by_company == {companies[1]: [5, 341], companies[2]: [341]}
    with pytest.raises(Exception, match="only one company can be the primary"):
        sb.upsert("deals", {}, id=deal["id"], associations={
            "companies": [{"id": companies[1], "primary": True},
                          {"id": companies[2], "primary": True}]})
