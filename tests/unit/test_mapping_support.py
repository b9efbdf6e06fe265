"""The map layer's data files, its context (portal, deep-link host) and draft fingerprints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubspot_ledger import config
from hubspot_ledger import maps as mapping_data
from hubspot_ledger.errors import ReconnectRequired
from hubspot_ledger.extract.models import Product
from hubspot_ledger.load.records import (
    Integration,
    IntegrationSettings,
    IntegrationStatus,
    ItemType,
    RemoteType,
)
from hubspot_ledger.mapping import (
    DEFAULT_UI_DOMAIN,
    MappingContext,
    MappingDataError,
    fingerprint,
    hubspot_properties,
    map_product_to_item,
)
from hubspot_ledger.mapping.money import find_currency

pytestmark = pytest.mark.unit

SETTINGS = IntegrationSettings(
    integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
    expense_account="5000", income_account="4000", clearing_account="1190", company="Acme Ltd",
    sync_invoices=False, ids={"deferred_revenue_account_id": 12, "expense_account_id": 13,
                              "income_account_id": 14, "company_id": 21})


def integration(remote_id: str | None = "4711", ui_domain: str | None = "app-eu1.hubspot.com"
                ) -> Integration:
    return Integration(id=3, organization_id=1, organization_name="Acme Corp",
                       status=IntegrationStatus.CONNECTED, status_message=None,
                       remote_id=remote_id, currency="EUR", ui_domain=ui_domain,
                       cutoff_date=dt.date(2025, 1, 1), schedule="@hourly", expires_in=1800,
                       scope="oauth", token_created_at=None)


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    caches = (mapping_data.product_types, mapping_data.customer_fields,
              mapping_data.currency_minor_units)
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


# --- context -------------------------------------------------------------------------------------


def test_context_from_integration_takes_portal_currency_and_ui_domain() -> None:
    context = MappingContext.from_integration(integration(), SETTINGS)
    assert (context.portal_id, context.currency, context.ui_domain) == (
        "4711", "EUR", "app-eu1.hubspot.com")
    assert context.deal_link("9") == "https://app-eu1.hubspot.com/contacts/4711/deal/9"


def test_context_of_an_unconnected_integration_is_refused() -> None:
    with pytest.raises(ReconnectRequired, match="not connected to a HubSpot portal"):
        MappingContext.from_integration(integration(remote_id=None), SETTINGS)


@pytest.mark.parametrize(("given", "expected"), [
    (None, DEFAULT_UI_DOMAIN), ("", DEFAULT_UI_DOMAIN), ("  ", DEFAULT_UI_DOMAIN),
    ("app-eu1.hubspot.com", "app-eu1.hubspot.com"),
    ("https://App-EU1.hubspot.com/", "app-eu1.hubspot.com"),
    ("127.0.0.1:8080", "127.0.0.1:8080"),
])
def test_r_deal_5_deep_link_host_is_the_portals_ui_domain_else_app_hubspot_com(
        given: str | None, expected: str) -> None:
    assert MappingContext(SETTINGS, "4711", ui_domain=given).ui_domain == expected


@pytest.mark.parametrize("bad", ["app.hubspot.com/evil?x=", "a b.com", "<script>"])
def test_ui_domain_that_is_not_a_host_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        MappingContext(SETTINGS, "4711", ui_domain=bad)


def test_blank_portal_id_is_refused() -> None:
    with pytest.raises(ValueError):
        MappingContext(SETTINGS, " ")


# --- data files ----------------------------------------------------------------------------------


def test_currency_list_holds_real_iso_4217_codes_with_their_minor_units() -> None:
    assert [(c.code, c.minor_unit) for c in map(find_currency, ["USD", "jpy", "KWD", "CLF"])
            if c] == [("USD", 2), ("JPY", 0), ("KWD", 3), ("CLF", 4)]
    assert find_currency("XYZ") is None and find_currency("XAU") is None


def test_hubspot_properties_lists_what_the_map_layer_reads() -> None:
    assert {"owneremail", "zip", "address", "name", "domain"} <= set(
        hubspot_properties(RemoteType.COMPANY))
    assert {"quantity", "price", "discount", "hs_discount_percentage", "hs_product_id"} <= set(
        hubspot_properties("line_item"))
    assert {"hs_invoice_date", "hs_due_date", "hs_currency"} <= set(
        hubspot_properties(RemoteType.INVOICE))


def test_r_prod_3_product_type_map_is_read_from_the_yaml_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_caches: None) -> None:
    (tmp_path / "product_types.yaml").write_text(
        "default: service\ntypes:\n  hardware: goods\n")
    monkeypatch.setattr(config, "MAPPINGS_DIR", tmp_path)
    context = MappingContext(SETTINGS, "4711")
    assert map_product_to_item(Product(id="1", properties={"hs_product_type": "Hardware"}),
                               context).item_type is ItemType.GOODS
    assert map_product_to_item(Product(id="1"), context).item_type is ItemType.SERVICE


@pytest.mark.parametrize(("name", "content"), [
    ("product_types.yaml", "default: gadgets\ntypes:\n  service: service\n"),
    ("product_types.yaml", "- not a mapping\n"),
    ("company_to_customer.yaml", "fields:\n  nickname: name\n"),
    ("currencies.yaml", "minor_units:\n  usd: 2\n"),
    ("currencies.yaml", "minor_units:\n  USD: 7\n"),
])
def test_malformed_mapping_file_is_a_deployment_error(
        name: str, content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fresh_caches: None) -> None:
    (tmp_path / name).write_text(content)
    monkeypatch.setattr(config, "MAPPINGS_DIR", tmp_path)
    loader = {"product_types.yaml": mapping_data.product_types,
              "company_to_customer.yaml": mapping_data.customer_fields,
              "currencies.yaml": mapping_data.currency_minor_units}[name]
    with pytest.raises(MappingDataError, match=name):
        loader()


def test_missing_mapping_file_is_a_deployment_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_caches: None) -> None:
    monkeypatch.setattr(config, "MAPPINGS_DIR", tmp_path)
    with pytest.raises(MappingDataError, match="cannot read mapping file"):
        mapping_data.currency_minor_units()


# --- fingerprints --------------------------------------------------------------------------------


def test_fingerprint_is_equal_for_equal_drafts_and_differs_when_a_field_changes() -> None:
    context = MappingContext(SETTINGS, "4711")
    first = map_product_to_item(Product(id="1", properties={"name": "Widget"}), context)
    again = map_product_to_item(Product(id="1", properties={"name": " Widget "}), context)
    renamed = map_product_to_item(Product(id="1", properties={"name": "Gadget"}), context)
    assert fingerprint(first) == fingerprint(again)
    assert fingerprint(first) != fingerprint(renamed)
