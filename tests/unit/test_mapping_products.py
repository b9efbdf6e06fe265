"""Products → items (R-PROD-1…4)."""

from __future__ import annotations

import pytest

from hubspot_ledger.errors import SetupIncomplete
from hubspot_ledger.extract.models import BadValue, Product
from hubspot_ledger.load.records import IntegrationSettings, ItemType
from hubspot_ledger.mapping import MappingContext, map_product_to_item

pytestmark = pytest.mark.unit

IDS: dict[str, int | None] = {
    "ar_account_id": 11, "deferred_revenue_account_id": 12, "expense_account_id": 13,
    "income_account_id": 14, "clearing_account_id": 15, "company_id": 21}


def context(**ids: int | None) -> MappingContext:
    settings = IntegrationSettings(
        integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
        expense_account="5000", income_account="4000", clearing_account="1190",
        company="Acme Ltd", sync_invoices=False, ids={**IDS, **ids})
    return MappingContext(settings=settings, portal_id="4711", currency="USD")


def product(product_id: str = "501", /, **props: str | None) -> Product:
    return Product.from_api({"id": product_id, "properties": {"name": "Widget", **props}})


def test_r_prod_1_sku_is_hs_sku_stripped() -> None:
    assert map_product_to_item(product(hs_sku="  W-100 "), context()).sku == "W-100"


@pytest.mark.parametrize("sku", [None, "", "   ", "\x00\x07"])
def test_r_prod_1_sku_falls_back_to_hs_product_id(sku: str | None) -> None:
    item = map_product_to_item(product("501", hs_sku=sku), context())
    assert item.sku == "HS_501"
    assert item.remote_id == "501"


def test_r_prod_2_name_and_description_come_from_the_product() -> None:
    item = map_product_to_item(product(name=" Widget ", description="Blue\r\nand big\x00"),
                               context())
    assert item.name == "Widget"
    assert item.description == "Blue\nand big"


@pytest.mark.parametrize("name", [None, "", "  \n "])
def test_r_prod_2_product_without_a_name_is_named_after_its_sku(name: str | None) -> None:
    assert map_product_to_item(product(name=name, hs_sku="W-1"), context()).name == "W-1"
    assert map_product_to_item(product("7", name=name), context()).name == "HS_7"


def test_r_prod_2_10000_character_name_is_capped_and_description_kept() -> None:
    item = map_product_to_item(product(name="n" * 10_000, description="d" * 10_000), context())
    assert len(item.name) == 255 and item.name.endswith("…")  # the cut shows (issue 13)
    assert item.description == "d" * 10_000


def test_r_prod_1_sku_is_never_cut_too_long_is_refused() -> None:
    # Issue 13: a cut SKU could be another product's; see test_text_safety.py.
    with pytest.raises(BadValue, match="SKU .* is 256 characters long"):
        map_product_to_item(product(hs_sku="s" * 256), context())


@pytest.mark.parametrize(("hs_type", "expected"), [
    ("service", ItemType.SERVICE), (" Service ", ItemType.SERVICE),
    ("inventory", ItemType.GOODS), ("non_inventory", ItemType.GOODS),
])
def test_r_prod_3_product_type_map(hs_type: str, expected: ItemType) -> None:
    assert map_product_to_item(product(hs_product_type=hs_type), context()).item_type is expected


@pytest.mark.parametrize("hs_type", [None, "", "subscription", "bundle", "servicing"])
def test_r_prod_3_missing_or_unknown_product_type_is_goods(hs_type: str | None) -> None:
    item = map_product_to_item(product(hs_product_type=hs_type), context())
    assert item.item_type is ItemType.GOODS


def test_r_prod_4_goods_get_income_and_expense_accounts_but_no_deferred_revenue() -> None:
    item = map_product_to_item(product(hs_product_type="inventory"), context())
    assert (item.income_account_id, item.expense_account_id) == (14, 13)
    assert item.deferred_revenue_account_id is None


def test_r_prod_4_service_items_also_get_the_deferred_revenue_account() -> None:
    item = map_product_to_item(product(hs_product_type="service"), context())
    assert (item.income_account_id, item.expense_account_id,
            item.deferred_revenue_account_id) == (14, 13, 12)


def test_r_prod_4_missing_account_setting_is_setup_incomplete() -> None:
    with pytest.raises(SetupIncomplete, match="Setup incomplete: the income account is not set"):
        map_product_to_item(product(), context(income_account_id=None))
