"""The load layer's set-based pages and their record-by-record fallback (writer.py, bulk.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from hubspot_ledger.drafts import CustomerDraft, ItemDraft
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import ItemType
from hubspot_ledger.load.writer import Change, LedgerWriter

from .helpers import Org

pytestmark = pytest.mark.integration


def item(product: str, sku: str, name: str = "Widget") -> ItemDraft:
    return ItemDraft(remote_id=product, sku=sku, name=name, description=None,
                     item_type=ItemType.GOODS, income_account_id=0, expense_account_id=0,
                     deferred_revenue_account_id=None)


def writer_for(ledger: psycopg.Connection[Any], org: Org) -> tuple[LedgerWriter, Any]:
    conn = LedgerHook().new_connection()
    conn.autocommit = True
    return LedgerWriter(conn, org.integration_id, org.id), conn


def _accounts(draft: ItemDraft, org: Org) -> ItemDraft:
    return replace(draft, income_account_id=org.account_id, expense_account_id=org.account_id)


def test_a_page_of_items_creates_updates_and_leaves_unchanged(
        ledger: psycopg.Connection[Any], org_factory: Callable[[str], Org]) -> None:
    org = org_factory("Pages Ltd")
    writer, conn = writer_for(ledger, org)
    first = [_accounts(item("1", "A"), org), _accounts(item("2", "B"), org)]
    assert [o.change for o in writer.upsert_items(first)] == [Change.CREATED] * 2
    second = [first[0], _accounts(item("2", "B", name="Renamed"), org),
              _accounts(item("3", "C"), org)]
    assert [o.change for o in writer.upsert_items(second)] == \
        [Change.UNCHANGED, Change.UPDATED, Change.CREATED]
    names = dict(ledger.execute("SELECT sku, name FROM ledger.items WHERE organization_id = %s",
                                [org.id]).fetchall())
    assert names == {"SKU-1": "Consulting", "A": "Widget", "B": "Renamed", "C": "Widget"}
    conn.close()


def test_products_sharing_a_sku_share_one_item_and_an_existing_one_is_adopted(
        ledger: psycopg.Connection[Any], org_factory: Callable[[str], Org]) -> None:
    org = org_factory("Shared Ltd")
    writer, conn = writer_for(ledger, org)
    outcomes = writer.upsert_items([_accounts(item("1", "SAME"), org),
                                    _accounts(item("2", "SAME"), org),
                                    _accounts(item("3", "SKU-1"), org)])  # made by hand
    assert [o.change for o in outcomes] == [Change.CREATED, Change.CREATED, Change.UPDATED]
    assert outcomes[0].local_id == outcomes[1].local_id
    assert outcomes[2].local_id == org.item_id
    count = ledger.execute("SELECT count(*) FROM ledger.items WHERE organization_id = %s",
                           [org.id]).fetchone()
    assert count is not None and count[0] == 2
    conn.close()


def test_a_bad_record_fails_alone_when_the_page_falls_back(
        ledger: psycopg.Connection[Any], org_factory: Callable[[str], Org]) -> None:
    org = org_factory("Fallback Ltd")
    writer, conn = writer_for(ledger, org)
    writer.upsert_items([_accounts(item("1", "A"), org), _accounts(item("2", "B"), org)])
    # Product 2's SKU changes to one item A already has: only product 2 fails, with a message
    # saying why, and the rest of the page lands (the SKU is the item's identity).
    outcomes = writer.upsert_items([_accounts(item("2", "A"), org),
                                    _accounts(item("4", "D"), org)])
    assert [o.change for o in outcomes] == [Change.FAILED, Change.CREATED]
    assert outcomes[0].message is not None and 'SKU changed to "A"' in outcomes[0].message
    conn.close()


def test_a_page_of_customers(ledger: psycopg.Connection[Any],
                             org_factory: Callable[[str], Org]) -> None:
    org = org_factory("Customers Ltd")
    writer, conn = writer_for(ledger, org)
    drafts = [CustomerDraft(remote_id=str(i), name=f"Company {i}", city="Leeds")
              for i in range(1, 4)]
    assert {o.change for o in writer.upsert_customers(drafts)} == {Change.CREATED}
    drafts[1] = CustomerDraft(remote_id="2", name="Company 2", city="York")
    assert [o.change for o in writer.upsert_customers(drafts)] == \
        [Change.UNCHANGED, Change.UPDATED, Change.UNCHANGED]
    row = ledger.execute("SELECT city FROM ledger.customers WHERE name = 'Company 2'").fetchone()
    assert row is not None and row[0] == "York"
    conn.close()
