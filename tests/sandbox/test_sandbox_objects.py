"""CRM v3 objects: list paging, read, batch read, property selection and value formats."""

from __future__ import annotations

import re

import pytest

from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TYPES = ("products", "companies", "deals", "line_items", "invoices")


@pytest.mark.parametrize("object_type", TYPES)
def test_list_paging_returns_every_record_once(sb: SandboxServer, api: Api,
                                               object_type: str) -> None:
    counts = sb.portals()[0]["counts"]
    seen = []
    after = None
    while True:
        params = {"limit": 3, **({"after": after} if after else {})}
        body = api.get(f"/crm/v3/objects/{object_type}", params=params).json()
        assert len(body["results"]) <= 3
        seen += [r["id"] for r in body["results"]]
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
        assert f"after={after}" in body["paging"]["next"]["link"]
    assert len(seen) == len(set(seen))
    archived = {r["id"] for r in api.list_all(object_type, archived="true")}
    assert len(seen) + len(archived) == counts[object_type]
    assert not archived & set(seen)


def test_list_limits(api: Api) -> None:
    assert len(api.get("/crm/v3/objects/deals").json()["results"]) == 10  # default
    response = api.get("/crm/v3/objects/deals", params={"limit": 101})
    assert response.status_code == 400 and response.json()["category"] == "VALIDATION_ERROR"
    assert api.get("/crm/v3/objects/deals", params={"limit": 100}).status_code == 200


def test_type_ids_and_singular_names_are_accepted(api: Api) -> None:
    by_name = api.list_all("deals")
    assert api.list_all("0-3") == by_name and api.list_all("deal") == by_name
    for alias, name in (("0-7", "products"), ("0-2", "companies"), ("0-8", "line_items"),
                        ("0-53", "invoices"), ("line_item", "line_items")):
        assert api.list_all(alias) == api.list_all(name)
    unknown = api.get("/crm/v3/objects/widgets")
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "Unable to infer object type from: widgets"


def test_default_and_requested_properties(api: Api) -> None:
    deal = api.get("/crm/v3/objects/deals", params={"limit": 1}).json()["results"][0]
    assert set(deal["properties"]) == {"dealname", "amount", "closedate", "pipeline",
                                       "dealstage", "createdate", "hs_lastmodifieddate",
                                       "hs_object_id"}
    picked = api.get("/crm/v3/objects/deals", params=[
        ("limit", "1"), ("properties", "dealname,description"), ("properties", "nonexistent"),
        ("properties", "hs_is_closed_won")]).json()["results"][0]
    assert set(picked["properties"]) == {"dealname", "description", "hs_is_closed_won",
                                         "createdate", "hs_lastmodifieddate", "hs_object_id"}
    for name in ("products", "companies", "line_items", "invoices"):
        record = api.get(f"/crm/v3/objects/{name}", params={"limit": 1}).json()["results"][0]
        assert {"createdate", "hs_lastmodifieddate", "hs_object_id"} <= set(record["properties"])


def test_values_are_strings_or_null_and_datetimes_are_iso(api: Api) -> None:
    for name in TYPES:
        for record in api.list_all(name, properties="closedate,hs_invoice_date,hs_due_date,"
                                   "price,quantity,amount,hs_sku,phone,owneremail"):
            assert set(record) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
            assert ISO.match(record["createdAt"]) and ISO.match(record["updatedAt"])
            assert record["properties"]["hs_object_id"] == record["id"]
            for key, value in record["properties"].items():
                assert value is None or isinstance(value, str), (key, value)
                if key in ("closedate", "hs_invoice_date", "hs_due_date", "createdate",
                           "hs_lastmodifieddate") and value is not None:
                    assert ISO.match(value), (key, value)


def test_read_one_and_not_found(api: Api) -> None:
    deal = api.list_all("deals")[0]
    one = api.get(f"/crm/v3/objects/deals/{deal['id']}").json()
    assert one == deal
    missing = api.get("/crm/v3/objects/deals/12345")
    assert missing.status_code == 404
    body = missing.json()
    assert body["category"] == "OBJECT_NOT_FOUND" and body["status"] == "error"
    assert body["correlationId"] and body["context"] == {"id": ["12345"]}
    assert api.get("/crm/v3/objects/deals/abc").json()["message"].startswith("Object not found")


def test_read_by_id_property(api: Api) -> None:
    product = api.get("/crm/v3/objects/products", params={
        "properties": "hs_sku", "limit": 1}).json()["results"][0]
    sku = product["properties"]["hs_sku"]
    found = api.get(f"/crm/v3/objects/products/{sku}", params={"idProperty": "hs_sku"})
    assert found.status_code == 200 and found.json()["id"] == product["id"]


def test_inline_associations(api: Api) -> None:
    deals = api.list_all("deals", associations="companies,line_items")
    with_companies = [d for d in deals if "companies" in d.get("associations", {})]
    assert with_companies
    for deal in with_companies:
        types = [a["type"] for a in deal["associations"]["companies"]["results"]]
        assert types.count("deal_to_company") == 1
        assert "deal_to_company_unlabeled" in types
    assert any("line items" in d.get("associations", {}) for d in deals)


def test_batch_read(api: Api) -> None:
    ids = [d["id"] for d in api.list_all("deals")][:4]
    response = api.post("/crm/v3/objects/deals/batch/read", json={
        "inputs": [{"id": i} for i in ids], "properties": ["dealname"]})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and ISO.match(body["startedAt"])
    assert [r["id"] for r in body["results"]] == ids
    assert set(body["results"][0]["properties"]) == {"dealname", "createdate",
                                                     "hs_lastmodifieddate", "hs_object_id"}
    partial = api.post("/crm/v3/objects/deals/batch/read", json={
        "inputs": [{"id": ids[0]}, {"id": "1"}, {"id": "2"}], "properties": []})
    assert partial.status_code == 207
    body = partial.json()
    assert [r["id"] for r in body["results"]] == [ids[0]]
    assert body["numErrors"] == 1
    error = body["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND" and error["context"] == {"ids": ["1", "2"]}
    assert error["message"].startswith("Could not get some DEAL objects")
    too_many = api.post("/crm/v3/objects/deals/batch/read",
                        json={"inputs": [{"id": str(i)} for i in range(101)]})
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    assert api.post("/crm/v3/objects/deals/batch/read", data="{").status_code == 400


def test_archived_records(sb: SandboxServer, api: Api) -> None:
    deal_id = api.list_all("deals")[0]["id"]
    sb.archive("deals", deal_id)
    assert deal_id not in [d["id"] for d in api.list_all("deals")]
    archived = api.list_all("deals", archived="true")
    assert [d["id"] for d in archived] == [deal_id]
    assert archived[0]["archived"] is True and ISO.match(archived[0]["archivedAt"])
    assert api.get(f"/crm/v3/objects/deals/{deal_id}").status_code == 404
    assert api.get(f"/crm/v3/objects/deals/{deal_id}", params={"archived": "true"}).ok
    batch = api.post("/crm/v3/objects/deals/batch/read", json={"inputs": [{"id": deal_id}]})
    assert batch.status_code == 207


def test_pipelines(api: Api) -> None:
    pipelines = api.get("/crm/v3/pipelines/deals").json()["results"]
    stages = {s["id"]: s["metadata"] for s in pipelines[0]["stages"]}
    assert pipelines[0]["id"] == "default"
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["closedlost"]["probability"] == "0.0"
