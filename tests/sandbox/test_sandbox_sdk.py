"""HubSpot's official Python SDK parses the sandbox's answers into its models.

Client-side validation is switched on, so every field the SDK's models require must be there
with an allowed value: this is the proof that the shapes are HubSpot's.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest
from hubspot.crm.deals.exceptions import ApiException

from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = pytest.mark.integration


def sdk(sb: SandboxServer, access_token: str | None = None) -> HubSpot:
    return HubSpot(access_token=access_token, host=sb.url, client_side_validation=True)


@pytest.fixture
def client(sb: SandboxServer) -> HubSpot:
    sb.update_config(search_rate=100)
    code = sb.authorize()
    tokens = sdk(sb).oauth.tokens_api.create(
        grant_type="authorization_code", code=code, redirect_uri=sb.redirect_uri,
        client_id=sb.client_id, client_secret=sb.client_secret)
    assert tokens.token_type == "bearer" and tokens.expires_in == 1800
    refreshed = sdk(sb).oauth.tokens_api.create(
        grant_type="refresh_token", refresh_token=tokens.refresh_token,
        client_id=sb.client_id, client_secret=sb.client_secret)
    assert refreshed.refresh_token == tokens.refresh_token
    info = sdk(sb).oauth.access_tokens_api.get(refreshed.access_token)
    assert info.hub_id == sb.portal_id
    return sdk(sb, refreshed.access_token)


def test_objects_pages_and_reads(client: HubSpot) -> None:
    page = client.crm.deals.basic_api.get_page(limit=5, properties=["dealname", "amount"],
                                               associations=["companies"])
    assert len(page.results) == 5 and page.paging.next.after
    deal = page.results[0]
    assert isinstance(deal.created_at, dt.datetime) and deal.properties["dealname"]
    assert deal.associations["companies"].results[0].type == "deal_to_company"
    one = client.crm.deals.basic_api.get_by_id(deal.id, properties=["dealstage"])
    assert one.id == deal.id
    products = client.crm.products.basic_api.get_page(limit=100, properties=["hs_sku"])
    companies = client.crm.companies.basic_api.get_page(limit=100, properties=["owneremail"])
    lines = client.crm.line_items.basic_api.get_page(limit=100, properties=["hs_product_id"])
    invoices = client.crm.objects.basic_api.get_page(
        object_type="invoices", properties=["hs_invoice_date", "hs_due_date", "hs_number"])
    assert products.results and companies.results and lines.results and invoices.results
    with pytest.raises(ApiException) as missing:
        client.crm.deals.basic_api.get_by_id("1")
    assert missing.value.status == 404


def test_search_and_batch_read(client: HubSpot) -> None:
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "dealstage", "operator": "EQ",
                                     "value": "closedwon"}]}],
        sorts=["-closedate"], properties=["dealname", "closedate"], limit=3, after="0")
    found = client.crm.deals.search_api.do_search(public_object_search_request=request)
    assert found.total >= 3 and len(found.results) == 3 and found.paging.next.after == "3"
    ids = [d.id for d in found.results]
    batch = client.crm.deals.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=["dealname"],
            properties_with_history=[]))
    assert batch.status == "COMPLETE" and [d.id for d in batch.results] == ids
    partial = client.crm.deals.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            inputs=[{"id": ids[0]}, {"id": "1"}], properties=[], properties_with_history=[]))
    assert partial.num_errors == 1 and partial.errors[0].category == "OBJECT_NOT_FOUND"
    invoices = client.crm.objects.search_api.do_search(
        object_type="invoices", public_object_search_request={"filterGroups": [], "limit": 2})
    assert invoices.total >= 2


def test_associations_v4(client: HubSpot) -> None:
    deals = client.crm.deals.basic_api.get_page(limit=100).results
    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[{"id": d.id} for d in deals])
    answer = client.crm.associations.v4.batch_api.get_page(
        from_object_type="deals", to_object_type="companies",
        batch_input_public_fetch_associations_batch_request=request)
    assert answer.status == "COMPLETE" and answer.results
    kinds = {(t.type_id, t.label) for r in answer.results for to in r.to
             for t in to.association_types}
    assert (5, "Primary") in kinds and (341, None) in kinds
    assert answer.num_errors and answer.errors[0].sub_category == \
        "crm.associations.NO_ASSOCIATIONS_FOUND"
    listed = client.crm.associations.v4.basic_api.get_page(
        object_type="deals", object_id=answer.results[0]._from.id,
        to_object_type="line_items", limit=500)
    assert listed.results and listed.results[0].association_types[0].type_id == 19
