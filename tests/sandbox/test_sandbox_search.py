"""CRM search: every operator, sorting, paging, limits, the 10,000-result cap, archived records
and index lag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import wait_until

from hubspot_ledger_tools.sandbox.testing import SandboxServer
from hubspot_ledger_tools.sandbox.timefmt import iso, ms_of, parse_time

from .helpers import Api

pytestmark = pytest.mark.integration

PROPS = ["dealname", "amount", "closedate", "dealstage", "description", "pipeline"]


@pytest.fixture(autouse=True)
def fast_search(sb: SandboxServer) -> None:
    """These tests search far more than HubSpot's 5 per second (rate limits have own tests)."""
    sb.update_config(search_rate=10_000)


def search_ids(api: Api, object_type: str = "deals", /, **body: Any) -> list[str]:
    """Every id the search finds, following its paging."""
    found: list[str] = []
    after = "0"
    while True:
        response = api.search(object_type, **{"limit": 200, **body, "after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        found += [r["id"] for r in page["results"]]
        if "paging" not in page:
            assert page["total"] == len(found)
            return found
        after = page["paging"]["next"]["after"]


@pytest.fixture
def deals(api: Api) -> list[dict[str, Any]]:
    return api.list_all("deals", properties=",".join(PROPS))


def expect(deals: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [d["id"] for d in deals if keep(d["properties"])]


def one(prop: str, operator: str, **rest: Any) -> dict[str, Any]:
    return {"filterGroups": [{"filters": [{"propertyName": prop, "operator": operator,
                                           **rest}]}]}


def amount(p: dict[str, Any]) -> float | None:
    return float(p["amount"]) if p["amount"] else None


def test_comparison_operators(api: Api, deals: list[dict[str, Any]]) -> None:
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        (one("amount", "GT", value="5000"), lambda p: (amount(p) or 0) > 5000 and
         amount(p) is not None),
        (one("amount", "GTE", value="3600"), lambda p: amount(p) is not None and
         amount(p) >= 3600),  # type: ignore[operator]
        (one("amount", "LT", value="3600"), lambda p: amount(p) is not None and
         amount(p) < 3600),  # type: ignore[operator]
        (one("amount", "LTE", value="0"), lambda p: amount(p) == 0),
        (one("amount", "BETWEEN", value="1000", highValue="4000"),
         lambda p: amount(p) is not None and 1000 <= amount(p) <= 4000),  # type: ignore[operator]
        (one("dealstage", "EQ", value="closedwon"), lambda p: p["dealstage"] == "closedwon"),
        (one("dealstage", "NEQ", value="closedwon"), lambda p: p["dealstage"] != "closedwon"),
        (one("dealstage", "IN", values=["closedlost", "contractsent"]),
         lambda p: p["dealstage"] in ("closedlost", "contractsent")),
        (one("dealstage", "NOT_IN", values=["closedwon", "closedlost"]),
         lambda p: p["dealstage"] not in ("closedwon", "closedlost")),
        (one("description", "HAS_PROPERTY"), lambda p: bool(p["description"])),
        (one("description", "NOT_HAS_PROPERTY"), lambda p: not p["description"]),
        (one("dealname", "CONTAINS_TOKEN", value="acme"), lambda p: "Acme" in p["dealname"]),
        (one("dealname", "NOT_CONTAINS_TOKEN", value="acme"),
         lambda p: "Acme" not in p["dealname"]),
        (one("dealname", "CONTAINS_TOKEN", value="glob*"), lambda p: "Globex" in p["dealname"]),
    ]
    for body, keep in cases:
        wanted = expect(deals, keep)
        assert search_ids(api, **body) == wanted, body
    assert all(expect(deals, keep) for _, keep in cases[:6])  # the cases are not vacuous


def test_datetime_filters_take_ms_or_iso(api: Api, deals: list[dict[str, Any]]) -> None:
    cutoff = ms_of(2025, 1, 1)
    wanted = expect(deals, lambda p: parse_time(p["closedate"]) >= cutoff)  # type: ignore[operator]
    for value in (str(cutoff), "2025-01-01", "2025-01-01T00:00:00.000Z"):
        assert search_ids(api, **one("closedate", "GTE", value=value)) == wanted
    before = search_ids(api, **one("closedate", "LT", value=str(cutoff)))
    assert sorted(before + wanted) == sorted(d["id"] for d in deals)
    edge = search_ids(api, **one("closedate", "EQ", value=iso(cutoff)))
    assert len(edge) == 1


def test_filter_groups_are_ored_filters_anded(api: Api, deals: list[dict[str, Any]]) -> None:
    body = {"filterGroups": [
        {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"},
                     {"propertyName": "closedate", "operator": "GTE", "value": "2025-01-01"}]},
        {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedlost"}]}]}
    wanted = expect(deals, lambda p: (p["dealstage"] == "closedwon" and p["closedate"] >=
                                      "2025-01-01") or p["dealstage"] == "closedlost")
    assert search_ids(api, **body) == wanted


def test_sorting_and_paging(api: Api, deals: list[dict[str, Any]]) -> None:
    ordered = sorted(deals, key=lambda d: (d["properties"]["closedate"], int(d["id"])))
    asc = search_ids(api, sorts=[{"propertyName": "closedate", "direction": "ASCENDING"}],
                     limit=3)
    assert asc == [d["id"] for d in ordered]
    desc = search_ids(api, sorts=[{"propertyName": "closedate", "direction": "DESCENDING"}],
                      limit=4)
    assert desc == [d["id"] for d in reversed(ordered)]
    assert search_ids(api, sorts=["-closedate"]) == desc  # the SDK's string form
    by_amount = search_ids(api, sorts=[{"propertyName": "amount", "direction": "DESCENDING"}])
    with_amount = [d for d in deals if d["properties"]["amount"]]
    top = max(with_amount, key=lambda d: float(d["properties"]["amount"]))
    assert by_amount[0] == top["id"]
    first = api.search("deals", limit=5).json()
    assert first["total"] == len(deals) and first["paging"]["next"]["after"] == "5"
    assert len(api.search("deals").json()["results"]) == 10  # default limit


def test_properties_and_query(api: Api) -> None:
    page = api.search("deals", properties=["dealname"], limit=1).json()["results"][0]
    assert set(page["properties"]) == {"dealname", "createdate", "hs_lastmodifieddate",
                                       "hs_object_id"}
    default = api.search("deals", limit=1).json()["results"][0]
    assert "dealstage" in default["properties"]
    found = api.search("companies", query="acme", properties=["name"]).json()["results"]
    assert [c["properties"]["name"] for c in found] == ["Acme Corporation"]
    assert api.search("products", query="consult").json()["total"] >= 1


def test_request_limits(api: Api) -> None:
    def status(**body: Any) -> int:
        response = api.search("deals", **body)
        if response.status_code == 400:
            assert response.json()["category"] == "VALIDATION_ERROR"
        return response.status_code

    f = {"propertyName": "amount", "operator": "GTE", "value": "0"}
    assert status(filterGroups=[{"filters": [f]}] * 5) == 200
    assert status(filterGroups=[{"filters": [f]}] * 6) == 400
    assert status(filterGroups=[{"filters": [f] * 6}]) == 200
    assert status(filterGroups=[{"filters": [f] * 7}]) == 400
    assert status(filterGroups=[{"filters": [f] * 6}] * 3) == 200
    assert status(filterGroups=[{"filters": [f] * 5}] * 3 + [{"filters": [f] * 4}]) == 400
    assert status(limit=200) == 200
    assert status(limit=201) == 400
    assert status(after="abc") == 400
    assert status(filterGroups=[{"filters": [{**f, "operator": "LIKE"}]}]) == 400
    assert status(sorts=[{"propertyName": "amount"}, {"propertyName": "closedate"}]) == 400
    assert status(query="x" * 3001) == 400


def test_archived_records_are_never_found(sb: SandboxServer, api: Api) -> None:
    won = search_ids(api, **one("dealstage", "EQ", value="closedwon"))
    sb.archive("deals", won[0])
    assert search_ids(api, **one("dealstage", "EQ", value="closedwon")) == won[1:]


def test_hs_object_id_windows(api: Api, deals: list[dict[str, Any]]) -> None:
    """The sync's way past the cap: sort by id and restart above the last id seen."""
    ids = [d["id"] for d in deals]
    above = search_ids(api, sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                       **one("hs_object_id", "GT", value=ids[4]))
    assert above == ids[5:]


def test_association_pseudo_property(api: Api) -> None:
    deal = next(d for d in api.list_all("deals", associations="companies")
                if "associations" in d)
    company = deal["associations"]["companies"]["results"][0]["id"]
    found = search_ids(api, **one("associations.company", "EQ", value=company))
    assert deal["id"] in found


def test_the_10000_result_cap(sb: SandboxServer) -> None:
    sb.add_portal(portal_id=99001, seed=5, scale=6500)
    api = Api(sb.url, sb.issue_tokens(portal_id=99001)["access_token"])
    first = api.search("line_items", limit=200)
    total = first.json()["total"]
    assert total > 10_000  # the total counts beyond the cap
    last_page = api.search("line_items", limit=200, after="9800")
    assert last_page.status_code == 200 and len(last_page.json()["results"]) == 200
    assert last_page.json()["paging"]["next"]["after"] == "10000"
    for after, limit in (("10000", 10), ("9900", 200), ("9999", 2)):
        beyond = api.search("line_items", limit=limit, after=after)
        assert beyond.status_code == 400, (after, limit)
        assert beyond.json()["category"] == "VALIDATION_ERROR"
    assert api.search("line_items", limit=100, after="9900").status_code == 200


def test_search_cap_is_configurable(sb: SandboxServer, api: Api) -> None:
    assert sb.config()["search_cap"] == 10_000
    sb.update_config(search_cap=6)
    assert api.search("deals", limit=3, after="3").status_code == 200
    assert api.search("deals", limit=3, after="4").status_code == 400


def test_index_lag_hides_fresh_changes(sb: SandboxServer, api: Api) -> None:
    sb.update_config(search_lag=0.5)
    before = search_ids(api)
    created = sb.upsert("deals", {"dealname": "Fresh deal", "dealstage": "closedwon"})
    assert created["id"] not in search_ids(api)
    assert len(api.list_all("deals")) == len(before) + 1  # reads see it at once
    # Within the lag's half second, polled below the search rate (5 a second).
    wait_until(lambda: created["id"] in search_ids(api), timeout=10, every=0.25,
               what="the search index catches up")
