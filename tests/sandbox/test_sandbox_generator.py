"""The data generator: deterministic, scaled, and covering every rule the sync must handle."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from decimal import Decimal

import pytest

from hubspot_ledger_tools.sandbox.config import TINY, parse_scale
from hubspot_ledger_tools.sandbox.generator import generate
from hubspot_ledger_tools.sandbox.pricing import line_amounts
from hubspot_ledger_tools.sandbox.records import PortalData, Record
from hubspot_ledger_tools.sandbox.schema import DEAL_STAGES
from hubspot_ledger_tools.sandbox.timefmt import iso, ms_of, parse_time

pytestmark = pytest.mark.unit


def digest(data: PortalData) -> str:
    content = {
        name: [(r.id, r.created, r.updated, r.archived, sorted(r.props.items()))
               for r in table]
        for name, table in data.tables.items()}
    links = {f"{a}>{b}": sorted((k, sorted(v.items())) for k, v in m.items())
             for (a, b), m in data.links.items()}
    return hashlib.sha256(json.dumps([content, links], default=str).encode()).hexdigest()


@pytest.fixture(scope="module")
def small() -> PortalData:
    return generate(1, parse_scale("small"))


def test_same_seed_same_data_different_seed_different_data(small: PortalData) -> None:
    assert digest(generate(1, parse_scale("small"))) == digest(small)
    assert digest(generate(2, parse_scale("small"))) != digest(small)


def test_scale_presets_and_integers() -> None:
    assert parse_scale("tiny") == TINY
    large = parse_scale("large")
    assert (large.deals, large.products, large.companies, large.invoices) == \
        (40_000, 3_000, 10_000, 20_000)
    assert parse_scale("medium").deals == 2_000
    assert parse_scale(500) == parse_scale("500")
    assert parse_scale(500).companies == 125
    with pytest.raises(ValueError, match="scale must be"):
        parse_scale("huge")


def test_record_counts_follow_the_scale() -> None:
    data = generate(3, parse_scale(400))
    counts = data.counts()
    assert counts["deals"] == 400 and counts["companies"] == 100 and counts["products"] == 30
    assert counts["invoices"] == 200
    # deal lines (about 1.5 per deal) plus invoice lines (about 1.6 per invoice)
    assert 700 < counts["line_items"] < 1_300


def _assoc(data: PortalData, a: str, record: Record, b: str) -> dict[int, list[int]]:
    return data.linked(a, record.id, b)


def test_tiny_portal_covers_every_rule() -> None:
    data = generate(1, TINY)
    deals = list(data.tables["deals"])
    products = data.tables["products"]
    lines = data.tables["line_items"]
    assert {r.props["dealstage"] for r in deals} == {s for s, _, _ in DEAL_STAGES}
    years = {iso(int(r.props["closedate"]))[:4] for r in deals}
    assert {"2023", "2024", "2025", "2026"} <= years
    won = [r for r in deals if r.props["dealstage"] == "closedwon"]
    company_counts = Counter(len(_assoc(data, "deals", r, "companies")) for r in won)
    assert company_counts[0] and company_counts[1] and max(company_counts) >= 2
    for deal in deals:  # exactly one primary company when there is any
        types = _assoc(data, "deals", deal, "companies").values()
        if types:
            assert sum(5 in t for t in types) == 1 and all(341 in t for t in types)
    line_sets = [[lines.records[i] for i in _assoc(data, "deals", d, "line_items")]
                 for d in won]
    assert any(not s for s in line_sets), "a won deal without line items"
    assert any(s and all(r.props["amount"] == "0.00" for r in s) for s in line_sets)
    assert any(s and any(r.props["amount"] == "0.00" for r in s)
               and any(r.props["amount"] != "0.00" for r in s) for s in line_sets)
    all_lines = list(lines)
    assert any("hs_product_id" not in r.props for r in all_lines)
    archived_ids = {str(p.id) for p in products if p.archived}
    assert any(r.props.get("hs_product_id") in archived_ids for r in all_lines)
    assert any("hs_discount_percentage" in r.props for r in all_lines)
    assert any("discount" in r.props for r in all_lines)
    assert any("." in str(r.props["quantity"]) for r in all_lines)
    kinds = {p.props.get("hs_product_type") for p in products}
    assert {"service", "inventory", "non_inventory", None} <= kinds
    assert any("hs_sku" not in p.props for p in products)
    assert any("hs_sku" in p.props for p in products)
    companies = list(data.tables["companies"])
    assert any("owneremail" in c.props for c in companies)
    assert any("phone" not in c.props for c in companies)
    invoices = list(data.tables["invoices"])
    assert any("hs_due_date" not in i.props for i in invoices)
    assert any("hs_invoice_date" not in i.props for i in invoices)
    invoice_lines = [lines.records[i] for inv in invoices
                     for i in _assoc(data, "invoices", inv, "line_items")]
    assert any("hs_product_id" not in r.props for r in invoice_lines)
    assert any(r.props["amount"] == "0.00" for r in invoice_lines)
    assert all(_assoc(data, "invoices", inv, "companies") for inv in invoices)
    assert {_assoc(data, "invoices", inv, "companies")[c][0]
            for inv in invoices for c in _assoc(data, "invoices", inv, "companies")} == {179}


def test_cutoff_edges_are_in_the_tiny_portal() -> None:
    data = generate(1, TINY)
    closedates = {r.props["closedate"] for r in data.tables["deals"]}
    assert ms_of(2024, 12, 31, 23, 59, 59, 999) in closedates
    assert ms_of(2025, 1, 1) in closedates


def test_line_amounts_follow_hubspot() -> None:
    # Percentage applies to the line total and rounds there (hubspot-api.md addendum).
    assert line_amounts("10", "234.56", percentage="20") == {
        "amount": "1876.48", "hs_pre_discount_amount": "2345.60",
        "hs_total_discount": "469.12"}
    # `discount` is per unit.
    assert line_amounts("3", "100", discount="10")["amount"] == "270.00"
    assert line_amounts("2.5", "19.99")["amount"] == "49.98"
    assert line_amounts("1", "0")["amount"] == "0.00"


def test_generated_line_amounts_are_consistent(small: PortalData) -> None:
    for line in small.tables["line_items"]:
        props = line.props
        expected = line_amounts(props["quantity"], props["price"], props.get("discount"),
                                props.get("hs_discount_percentage"))
        assert props["amount"] == expected["amount"]
        assert Decimal(str(props["price"])) >= 0


def test_records_have_ascending_ids_and_sane_dates(small: PortalData) -> None:
    for table in small.tables.values():
        assert table.ids == sorted(table.records)
        for record in table:
            assert record.updated >= record.created
            assert record.updated <= ms_of(2026, 10, 1)


def test_parse_time_accepts_ms_and_iso() -> None:
    assert parse_time("1735689600000") == ms_of(2025, 1, 1)
    assert parse_time("2025-01-01") == ms_of(2025, 1, 1)
    assert parse_time("2025-01-01T00:00:00Z") == ms_of(2025, 1, 1)
    assert parse_time("2025-01-01T01:00:00+01:00") == ms_of(2025, 1, 1)
    assert parse_time("not a date") is None
    assert iso(ms_of(2024, 12, 31, 23, 59, 59, 999)) == "2024-12-31T23:59:59.999Z"
