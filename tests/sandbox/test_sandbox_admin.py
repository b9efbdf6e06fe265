"""The admin API: record changes, portals, reset and run-time config."""

from __future__ import annotations

import pytest

from hubspot_ledger_tools.sandbox.testing import SandboxAdminError, SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration


def test_upsert_creates_and_updates_with_a_fresh_modified_date(sb: SandboxServer,
                                                               api: Api) -> None:
    product = api.list_all("products")[0]
    created = sb.upsert("line_items", {"name": "Extra seats", "quantity": "3", "price": "100",
                                       "discount": "10", "hs_product_id": product["id"]})
    assert created["properties"]["amount"] == "270.00"  # computed as HubSpot does
    assert created["properties"]["hs_total_discount"] == "30.00"
    updated = sb.upsert("line_items", {"hs_discount_percentage": "50", "discount": None},
                        id=created["id"])
    assert updated["properties"]["amount"] == "150.00"
    assert "discount" not in updated["properties"]
    assert updated["updatedAt"] > created["updatedAt"]
    read = api.get(f"/crm/v3/objects/line_items/{created['id']}",
                   params={"properties": "amount,hs_lastmodifieddate"}).json()
    assert read["properties"]["amount"] == "150.00"
    assert read["updatedAt"] == updated["updatedAt"]
    assert read["properties"]["hs_lastmodifieddate"] == updated["updatedAt"]
    newest = api.search("line_items", sorts=[{"propertyName": "hs_lastmodifieddate",
                                              "direction": "DESCENDING"}], limit=1).json()
    assert newest["results"][0]["id"] == created["id"]


def test_deal_stage_flags_and_associations(sb: SandboxServer, api: Api) -> None:
    companies = [c["id"] for c in api.list_all("companies")]
    deal = sb.upsert("deals", {"dealname": "New", "dealstage": "contractsent",
                               "closedate": "2025-02-01", "amount": 10},
                     associations={"companies": [{"id": companies[0], "primary": True}]})
    assert deal["properties"]["hs_is_closed_won"] == "false"
    assert deal["properties"]["closedate"] == "2025-02-01T00:00:00.000Z"
    assert deal["properties"]["amount"] == "10"
    won = sb.upsert("deals", {"dealstage": "closedwon"}, id=deal["id"],
                    associations={"companies": [companies[1]]})
    assert won["properties"]["hs_is_closed_won"] == "true"
    assert won["associations"]["companies"] == [
        {"id": companies[1], "typeIds": [341], "primary": False}]
    back = sb.record("companies", companies[1])["associations"]["deals"]
    assert {"id": deal["id"], "typeIds": [342], "primary": False} in back
    assert deal["id"] not in [d["id"] for d in
                              sb.record("companies", companies[0])["associations"]["deals"]]
    with pytest.raises(SandboxAdminError, match="does not exist"):
        sb.upsert("deals", {}, id=deal["id"], associations={"companies": ["1"]})
    with pytest.raises(SandboxAdminError, match="cannot be associated"):
        sb.upsert("deals", {}, id=deal["id"], associations={"products": ["1"]})


def test_archive_restore_and_delete(sb: SandboxServer, api: Api) -> None:
    company = api.list_all("companies")[0]["id"]
    assert sb.archive("companies", company)["archived"] is True
    assert company not in [c["id"] for c in api.list_all("companies")]
    assert sb.archive("companies", company, archived=False)["archived"] is False
    assert company in [c["id"] for c in api.list_all("companies")]
    sb.delete("companies", company)
    assert api.get(f"/crm/v3/objects/companies/{company}").status_code == 404
    assert api.get(f"/crm/v3/objects/companies/{company}",
                   params={"archived": "true"}).status_code == 404
    with pytest.raises(SandboxAdminError):
        sb.delete("companies", company)


def test_add_portal_and_reset(sb: SandboxServer) -> None:
    added = sb.add_portal(portal_id=31337, seed=4, scale=30, currency="GBP",
                          ui_domain="app-eu1.hubspot.com")
    assert added["counts"]["deals"] == 30 and added["currency"] == "GBP"
    with pytest.raises(SandboxAdminError, match="already exists"):
        sb.add_portal(portal_id=31337)
    sb.upsert("deals", {"dealname": "temp"})
    sb.update_config(rate_limit=1)
    info = sb.reset()
    assert [p["portal_id"] for p in info["portals"]] == [sb.portal_id]
    assert info["portals"][0]["counts"]["deals"] == 16
    assert sb.config()["rate_limit"] == 110 and sb.faults() == [] and sb.requests() == []


def test_reset_to_another_seed(sb: SandboxServer, api: Api) -> None:
    before = [d["id"] for d in api.list_all("deals")]
    sb.reset(seed=2)
    token = sb.issue_tokens()["access_token"]
    after = [d["id"] for d in Api(sb.url, token).list_all("deals")]
    assert before != after and len(before) == len(after)
    sb.reset()  # a plain reset goes back to the startup seed
    assert [d["id"] for d in Api(sb.url, sb.issue_tokens()["access_token"])
            .list_all("deals")] == before


def test_config_changes_are_checked(sb: SandboxServer) -> None:
    assert sb.update_config(rate_limit="7")["rate_limit"] == 7
    for bad in ({"portal_id": 1}, {"rate_limit": "many"}, {"consent": "maybe"}):
        with pytest.raises(SandboxAdminError):
            sb.update_config(**bad)
    assert "client_secret" not in sb.config()


def test_info_exposes_the_app(sb: SandboxServer) -> None:
    info = sb.info()
    assert info["base_url"] == sb.url
    assert info["client_id"] == sb.client_id and info["client_secret"] == sb.client_secret
    assert sb.redirect_uri in info["redirect_uris"] and "oauth" in info["scopes"]
