"""The reconciliation's comparison and its CSV export (hubspot_ledger.reconcile): pure, no I/O."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from hubspot_ledger.reconcile import (
    HubSpotDeal,
    LedgerDocument,
    neutralise,
    reconcile,
    to_csv,
)

pytestmark = pytest.mark.unit

JAN, FEB = dt.date(2025, 1, 15), dt.date(2025, 2, 3)


def deal(id: str, amount: str | None, day: dt.date = JAN, currency: str = "USD",
         name: str | None = None) -> HubSpotDeal:
    return HubSpotDeal(id=id, name=name or f"Deal {id}", close_date=day, currency=currency,
                       amount=None if amount is None else Decimal(amount))


def contract(id: str, total: str, status: str = "draft", day: dt.date = JAN,
             currency: str = "USD") -> LedgerDocument:
    return LedgerDocument(remote_id=id, name=f"Deal {id}", status=status, date=day,
                          currency=currency, total=Decimal(total))


def test_every_difference_is_explained_by_month_and_currency() -> None:
    deals = [deal("1", "100.00"), deal("2", "250.00"), deal("3", "0"), deal("4", "40.00"),
             deal("5", "70.00"), deal("6", "1000", day=FEB, currency="JPY")]
    contracts = [contract("1", "100.00"), contract("4", "40.00", status="void"),
                 contract("5", "69.99"), contract("7", "30.00", status="void"),
                 contract("8", "15.00"), contract("6", "1000", day=FEB, currency="JPY")]
    invoices = [LedgerDocument("90", "INV-1", "draft", JAN, "USD", Decimal("55.10")),
                LedgerDocument("91", "INV-2", "void", JAN, "USD", Decimal("9.00"))]
    problems = {"2": "Line 3: price is not a number", "3": "No valid line items (all zero)"}

    result = reconcile(deals, contracts, invoices, problems)

    summary = {(r["month"], r["currency"]): r for r in result.summary.to_dict("records")}
    jan = summary[("2025-01", "USD")]
    assert jan["hubspot_deals"] == 5
    assert jan["hubspot_closed_won"] == Decimal("460.00")
    assert jan["ledger_contracts"] == 3  # 1, 5 and the draft 8 (void 4 and 7 are not counted)
    assert jan["ledger_contract_total"] == Decimal("184.99")
    assert jan["ledger_invoices"] == 1 and jan["ledger_invoice_total"] == Decimal("55.10")
    assert jan["difference"] == Decimal("275.01")
    assert jan["explanation"] == ("1 failed (250.00); 1 skipped (0); 2 void (70.00); "
                                  "1 only in ledger (15.00); 1 imported with another amount "
                                  "(0.01)")
    feb = summary[("2025-02", "JPY")]
    assert feb["difference"] == Decimal(0) and feb["explanation"] == ""

    outcome = dict(zip(result.detail["deal_id"], result.detail["outcome"], strict=True))
    assert outcome == {"1": "imported", "2": "failed", "3": "skipped", "4": "void",
                       "5": "imported", "6": "imported", "7": "void", "8": "only in ledger"}
    why = dict(zip(result.detail["deal_id"], result.detail["explanation"], strict=True))
    assert why["2"] == "Line 3: price is not a number"


def test_a_deal_never_synced_is_said_so() -> None:
    result = reconcile([deal("1", "10.00")], [], [], {})
    assert list(result.detail["outcome"]) == ["not synced yet"]
    assert result.summary.to_dict("records")[0]["difference"] == Decimal("10.00")


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_formula_text_is_neutralised_in_the_csv(text: str) -> None:
    result = reconcile([deal("1", "10.00", name=text)], [], [], {"1": text})
    rows = list(csv.DictReader(io.StringIO(to_csv(result.detail))))
    assert rows[0]["deal"] == "'" + text
    assert rows[0]["explanation"] == "'" + text
    assert rows[0]["hubspot_amount"] == "10.00"  # money is written as is


def test_numbers_and_plain_text_are_kept() -> None:
    assert neutralise(Decimal("-5.00")) == Decimal("-5.00")
    assert neutralise("Acme = fine") == "Acme = fine"
    assert neutralise("-") == "'-"
