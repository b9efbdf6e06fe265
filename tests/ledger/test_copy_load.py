"""The COPY load path (load/bulk.py, issue 12): what a page of drafts writes is exactly what the
drafts say — every column, text byte for byte (tabs, newlines, backslashes, quotes, `\\N`, the
literal word NULL, very long text), money to the last decimal — and a row whose values did not
change is not rewritten (R-DEAL-1, R-DEAL-5: the contract and its obligations follow the deal)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from hubspot_ledger.drafts import ContractDraft, CustomerDraft, ItemDraft, ObligationDraft
from hubspot_ledger.load.records import ItemType, RecognitionStrategy
from hubspot_ledger.load.writer import Change

from .helpers import Org
from .test_writer_pages import writer_for

pytestmark = pytest.mark.integration

# Text that COPY's text format must escape: its delimiter, row separator, escape character
# and null marker, plus quotes and text that merely looks like NULL.
AWKWARD = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "NULL",
           "it's \"quoted\"", "ünïcødé ✓ 💶", "x" * 20_000, "", " leading and trailing "]


def _item(org: Org, n: int, text: str) -> ItemDraft:
    return ItemDraft(remote_id=f"p{n}", sku=f"SKU\t{n}\\", name=text or "unnamed",
                     description=text, item_type=ItemType.SERVICE,
                     income_account_id=org.account_id, expense_account_id=org.account_id,
                     deferred_revenue_account_id=org.account_id)


def _contract(org: Org, n: int, text: str) -> ContractDraft:
    item = _item(org, n, text)
    lines = (
        ObligationDraft(remote_id=f"l{n}a", product_id=item.remote_id, item=item,
                        description=text, quantity=Decimal("12345678901234.123456"),
                        unit_price=Decimal("0.000001"), discount_percent=Decimal("12.345678"),
                        discount_amount=None, amount=Decimal("12345.67")),
        ObligationDraft(remote_id=f"l{n}b", product_id=item.remote_id, item=item,
                        description=None, quantity=Decimal("1"), unit_price=Decimal("-0"),
                        discount_percent=None, discount_amount=Decimal("0.0001"),
                        amount=Decimal("0.00"), recognition_strategy=RecognitionStrategy.RATABLE),
    )
    return ContractDraft(remote_id=f"d{n}", company_id=org.company_id,
                         customer=CustomerDraft(remote_id=f"c{n}", name=text or "unnamed",
                                                email=text, address_line1=text),
                         name=text or "unnamed", memo=text, currency="USD",
                         contract_date=dt.date(2025, 12, 31) + dt.timedelta(days=n),
                         total_amount=Decimal("12345.67"), obligations=lines)


def _ledger_rows(ledger: psycopg.Connection[Any], org: Org) -> dict[str, list[tuple[Any, ...]]]:
    def rows(query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in ledger.execute(query.encode(), [org.id]).fetchall()]

    return {
        "contracts": rows(
            "SELECT r.remote_id, c.name, c.memo, c.currency, c.contract_date, c.total_amount, "
            "c.status, cu.name, cu.email, cu.address_line1 FROM ledger.contracts c "
            "JOIN ledger.integration_records r ON r.local_table = 'contracts' "
            "AND r.local_id = c.id JOIN ledger.customers cu ON cu.id = c.customer_id "
            "WHERE c.organization_id = %s ORDER BY r.remote_id"),
        "obligations": rows(
            "SELECT r.remote_id, o.description, o.quantity, o.unit_price, o.discount_percent, "
            "o.discount_amount, o.amount, o.recognition_strategy, i.sku, i.name, i.description "
            "FROM ledger.performance_obligations o JOIN ledger.integration_records r "
            "ON r.local_table = 'performance_obligations' AND r.local_id = o.id "
            "JOIN ledger.items i ON i.id = o.item_id WHERE o.organization_id = %s "
            "ORDER BY r.remote_id"),
    }


def _expected(drafts: list[ContractDraft]) -> dict[str, list[tuple[Any, ...]]]:
    contracts = sorted((d.remote_id, d.name, d.memo, d.currency, d.contract_date,
                        d.total_amount, "draft", d.customer.name, d.customer.email,
                        d.customer.address_line1) for d in drafts)
    obligations = sorted((o.remote_id, o.description, o.quantity, o.unit_price,
                          o.discount_percent, o.discount_amount, o.amount,
                          o.recognition_strategy.value, o.item.sku, o.item.name,
                          o.item.description) for d in drafts for o in d.obligations)
    return {"contracts": contracts, "obligations": obligations}


def test_a_page_through_copy_lands_exactly_what_the_drafts_say(
        ledger: psycopg.Connection[Any], org_factory: Callable[[str], Org]) -> None:
    org = org_factory("Copy Ltd")
    writer, conn = writer_for(ledger, org)
    drafts = [_contract(org, n, text) for n, text in enumerate(AWKWARD)]
    with writer.batch():
        outcomes = writer.upsert_contracts(drafts)
    assert [o.change for o in outcomes] == [Change.CREATED] * len(drafts)
    assert _ledger_rows(ledger, org) == _expected(drafts)

    # The same page changed: the updates go through COPY too, and land exactly.
    changed = [replace(d, memo=f"{d.memo}\tv2", obligations=(
        replace(d.obligations[0], description="v2\\N"), d.obligations[1]))
        for d in drafts]
    with writer.batch():
        assert {o.change for o in writer.upsert_contracts(changed)} == {Change.UPDATED}
    assert _ledger_rows(ledger, org) == _expected(changed)
    conn.close()


def test_a_line_that_did_not_change_is_not_rewritten(
        ledger: psycopg.Connection[Any], org_factory: Callable[[str], Org]) -> None:
    """A deal's memo changes; its lines do not: the lines keep their row version (xmin) and
    updated_at, and their integration records are not rewritten either."""
    org = org_factory("Quiet Ltd")
    writer, conn = writer_for(ledger, org)
    draft = _contract(org, 1, "steady")
    with writer.batch():
        writer.upsert_contracts([draft])

    def versions() -> list[tuple[Any, ...]]:
        return [tuple(r) for r in ledger.execute(
            "SELECT o.xmin::text, o.updated_at, r.xmin::text FROM ledger.performance_obligations o "
            "JOIN ledger.integration_records r ON r.local_table = 'performance_obligations' "
            "AND r.local_id = o.id WHERE o.organization_id = %s ORDER BY o.id",
            [org.id]).fetchall()]

    before = versions()
    with writer.batch():
        assert [o.change for o in writer.upsert_contracts([replace(draft, memo="new memo")])] \
            == [Change.UPDATED]
    assert versions() == before
    memo = ledger.execute("SELECT memo FROM ledger.contracts WHERE organization_id = %s",
                          [org.id]).fetchone()
    assert memo is not None and memo[0] == "new memo"
    conn.close()
