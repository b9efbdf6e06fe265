"""Companies → customers (R-COMP-2) and the "Unknown" placeholders (R-DEAL-4, R-INV-6)."""

from __future__ import annotations

import pytest

from hubspot_ledger.extract.models import Company
from hubspot_ledger.load.records import CustomerType
from hubspot_ledger.mapping import (
    map_company_to_customer,
    placeholder_company,
    placeholder_customer,
)

pytestmark = pytest.mark.unit


def company(company_id: str = "301", /, **props: str | None) -> Company:
    return Company.from_api({"id": company_id, "properties": props})


def test_r_comp_2_company_fields_map_to_customer_fields() -> None:
    customer = map_company_to_customer(company(
        name="Acme Corp", owneremail="owner@acme.test", phone="+1 555 0100",
        website="https://acme.test", address="1 Main St", address2="Suite 2", city="Springfield",
        state="IL", zip="62701", country="United States", domain="acme.test"))
    assert customer.remote_id == "301"
    assert customer.customer_type is CustomerType.COMPANY
    assert (customer.name, customer.email, customer.phone, customer.website) == (
        "Acme Corp", "owner@acme.test", "+1 555 0100", "https://acme.test")
    assert (customer.address_line1, customer.address_line2, customer.city, customer.state,
            customer.postal_code, customer.country) == (
        "1 Main St", "Suite 2", "Springfield", "IL", "62701", "United States")
    assert customer.is_placeholder is False


def test_r_comp_2_blank_and_missing_fields_are_none() -> None:
    customer = map_company_to_customer(company(name="Acme", phone="  ", city=""))
    assert (customer.email, customer.phone, customer.city, customer.country) == (
        None, None, None, None)


def test_r_comp_2_company_without_a_name_is_named_after_its_domain() -> None:
    assert map_company_to_customer(company(name=" ", domain="acme.test")).name == "acme.test"


def test_r_comp_2_company_without_name_or_domain_is_named_by_its_id() -> None:
    assert map_company_to_customer(company("301")).name == "HubSpot company 301"


def test_r_comp_2_control_characters_and_line_breaks_are_cleaned() -> None:
    customer = map_company_to_customer(company(name="Acme\x00\nCorp", address="1 Main\tSt\x1b"))
    assert (customer.name, customer.address_line1) == ("Acme Corp", "1 Main St")


def test_r_comp_2_sql_metacharacters_are_kept_as_they_are() -> None:
    name = "O'Brien & Sons\"; DROP TABLE ledger.customers;--"
    assert map_company_to_customer(company(name=name)).name == name


def test_r_comp_2_10000_character_name_is_capped() -> None:
    name = map_company_to_customer(company(name="a" * 10_000)).name
    assert len(name) == 255 and name.endswith("…")  # the cut shows (issue 13)


def test_placeholder_customer_is_unknown_and_has_no_remote_id() -> None:
    customer = placeholder_customer()
    assert (customer.name, customer.remote_id, customer.is_placeholder) == ("Unknown", None, True)
    assert customer.customer_type is CustomerType.COMPANY


def test_placeholder_company_is_unknown() -> None:
    assert (placeholder_company().name, placeholder_company().is_placeholder) == ("Unknown", True)
