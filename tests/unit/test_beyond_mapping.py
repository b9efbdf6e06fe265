"""Issue 14's mapping rules: recognition from HubSpot's recurring terms, won stages from the
deal pipelines, invoice parties, and the settings' values."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hubspot_ledger.drafts import CompanyDraft, ContractDraft, ObligationDraft, fingerprint
from hubspot_ledger.errors import InvalidInput, SetupIncomplete
from hubspot_ledger.extract import closed_won
from hubspot_ledger.extract.models import Company, Deal, Invoice, LineItem
from hubspot_ledger.extract.parties import may_read_contacts
from hubspot_ledger.extract.party_models import Contact, Party
from hubspot_ledger.integration_settings import won_stages_value
from hubspot_ledger.load.records import (
    CustomerType,
    IntegrationSettings,
    InvoiceParties,
    Recognition,
    RecognitionStrategy,
)
from hubspot_ledger.mapping import (
    MappingContext,
    MappingError,
    map_deal_to_contract,
    map_invoice_to_sales_invoice,
)
from hubspot_ledger.mapping.parties import customer_of
from hubspot_ledger.mapping.terms import add_months, parse_term, service_period

pytestmark = pytest.mark.unit
D = dt.date
IDS: dict[str, int | None] = {
    "ar_account_id": 11, "deferred_revenue_account_id": 12, "expense_account_id": 13,
    "income_account_id": 14, "clearing_account_id": 15, "company_id": 21}


def deal_context() -> MappingContext:
    settings = IntegrationSettings(
        integration_id=1, organization_id=1, ar_account="1100", deferred_revenue_account="2400",
        expense_account="5000", income_account="4000", clearing_account="1190",
        company="Acme Ltd", sync_invoices=False, ids=IDS)
    return MappingContext(settings=settings, portal_id="4711", currency="USD")


def deal(**props: str | None) -> Deal:
    return Deal.from_api({"id": "9001", "properties": {
        "dealname": "Acme renewal", "dealstage": "closedwon",
        "closedate": "2025-06-30T12:00:00.000Z", **props}})


def line(line_id: str = "101", /, **props: str | None) -> LineItem:
    return LineItem.from_api({"id": line_id, "properties": {
        "name": "Consulting", "hs_product_id": "501", "quantity": "1", "price": "100", **props}})


def contract(*lines: LineItem, the_deal: Deal | None = None,
             ctx: MappingContext | None = None) -> ContractDraft:
    return map_deal_to_contract(the_deal or deal(), list(lines) or [line()],
                                ctx or deal_context())


def failure(*lines: LineItem, ctx: MappingContext) -> MappingError:
    with pytest.raises(MappingError) as err:
        map_deal_to_contract(deal(), list(lines), ctx)
    assert err.value.remote_id == "9001"
    return err.value


def terms_context(**changes: Any) -> MappingContext:
    ctx = deal_context()
    return replace(ctx, settings=replace(ctx.settings, **changes))


# --- recognition from HubSpot's terms ---------------------------------------------------------


@pytest.mark.parametrize(("term", "start", "end"), [
    ("P12M", D(2026, 1, 1), D(2026, 12, 31)),  # README's worked example
    ("P3M", D(2026, 1, 15), D(2026, 4, 14)),  # README's worked example, mid-month
    ("P1Y", D(2026, 1, 1), D(2026, 12, 31)),
    ("P1Y6M", D(2026, 1, 1), D(2027, 6, 30)),
    ("P2W", D(2025, 12, 20), D(2026, 1, 2)),
    ("P30D", D(2026, 2, 1), D(2026, 3, 2)),
    ("P1M", D(2026, 1, 31), D(2026, 2, 27)),  # 31 Jan + 1 month = 28 Feb, less a day
    ("P1M", D(2024, 2, 29), D(2024, 3, 28)),
    ("p12m", D(2026, 1, 1), D(2026, 12, 31)),
])
def test_service_period_is_start_plus_term_less_one_day(term: str, start: dt.date,
                                                        end: dt.date) -> None:
    parsed = parse_term(term)
    assert parsed is not None
    assert service_period(start, parsed) == (start, end)


@pytest.mark.parametrize("term", ["12 months", "P", "P0M", "P0Y0M0D", "PT1H", "P1W2D", "P12",
                                  "12M", "P-1M", "P999Y"])
def test_what_is_not_a_term(term: str) -> None:
    assert parse_term(term) is None


def test_add_months_crosses_years() -> None:
    assert add_months(D(2025, 11, 30), 3) == D(2026, 2, 28)


def test_hubspot_terms_make_a_recurring_line_ratable_over_its_service_period() -> None:
    draft = contract(
        line("101", hs_recurring_billing_period="P12M",
             hs_recurring_billing_start_date="2026-01-01"),
        line("102", hs_recurring_billing_period="P3M"),  # from the close date, 2025-06-30
        line("103"),
        ctx=terms_context(recognition=Recognition.HUBSPOT_TERMS))
    got = {o.remote_id: (o.recognition_strategy, o.service_start_date, o.service_end_date)
           for o in draft.obligations}
    assert got == {
        "101": (RecognitionStrategy.RATABLE, D(2026, 1, 1), D(2026, 12, 31)),
        "102": (RecognitionStrategy.RATABLE, D(2025, 6, 30), D(2025, 9, 29)),
        "103": (RecognitionStrategy.IMMEDIATE, None, None),
    }


def test_r_deal_6_terms_are_ignored_by_default() -> None:
    draft = contract(line("101", hs_recurring_billing_period="P12M"))
    (obligation,) = draft.obligations
    assert (obligation.recognition_strategy, obligation.service_start_date) == (
        RecognitionStrategy.IMMEDIATE, None)


def test_a_malformed_term_fails_the_deal_naming_the_line() -> None:
    err = failure(line("101", hs_recurring_billing_period="twelve months"),
                  ctx=terms_context(recognition=Recognition.HUBSPOT_TERMS))
    assert err.message == (
        'Deal 9001 ("Acme renewal") not imported: line item 101 ("Consulting"): term '
        '(hs_recurring_billing_period) "twelve months" is not a term such as P12M (12 months), '
        "P1Y, P6W or P30D; set the line's term again in HubSpot")


def test_a_malformed_billing_start_date_fails_the_deal() -> None:
    err = failure(line("101", hs_recurring_billing_period="P1M",
                       hs_recurring_billing_start_date="soon"),
                  ctx=terms_context(recognition=Recognition.HUBSPOT_TERMS))
    assert "billing start date (hs_recurring_billing_start_date)" in err.message
    assert err.message.startswith('Deal 9001 ("Acme renewal") not imported')


def test_service_dates_are_fingerprinted_only_when_set() -> None:
    draft = contract()
    (obligation,) = draft.obligations
    assert obligation.service_start_date is None
    ratable = replace(obligation, recognition_strategy=RecognitionStrategy.RATABLE,
                      service_start_date=D(2026, 1, 1), service_end_date=D(2026, 12, 31))
    assert fingerprint(replace(draft, obligations=(ratable,))) != fingerprint(
        replace(draft, obligations=(replace(ratable, service_end_date=D(2026, 6, 30)),)))
    assert isinstance(obligation, ObligationDraft)


# --- won stages -----------------------------------------------------------------------------


def _stage(stage_id: str, closed: str, probability: str, **extra: Any) -> dict[str, Any]:
    return {"id": stage_id, "metadata": {"isClosed": closed, "probability": probability},
            **extra}


PIPELINES = [
    {"id": "default", "stages": [_stage("contractsent", "false", "0.9"),
                                 _stage("closedwon", "true", "1.0"),
                                 _stage("closedlost", "true", "0.0")]},
    {"id": "renewals", "stages": [_stage("71900001", "false", "1.0"),  # open, though 1.0
                                  _stage("71900002", "true", "1"),
                                  _stage("71900009", "true", "1.0", archived=True)]},
]


def test_all_pipelines_counts_every_stage_hubspot_marks_closed_won() -> None:
    assert closed_won.won_stages("all-pipelines", PIPELINES) == {"closedwon", "71900002"}


def test_closedwon_needs_no_pipelines() -> None:
    assert closed_won.won_stages("closedwon", None) == {"closedwon"}


def test_an_explicit_list_must_name_stages_of_the_pipelines() -> None:
    assert closed_won.won_stages("closedwon,71900001", PIPELINES) == {"closedwon", "71900001"}
    with pytest.raises(SetupIncomplete) as err:
        closed_won.won_stages("closedwon,nosuch,71900009", PIPELINES)
    assert str(err.value) == (
        "Setup incomplete: won stage 'nosuch' is not a stage of any deal pipeline in HubSpot; "
        "correct the won stages setting; won stage '71900009' is not a stage of any deal "
        "pipeline in HubSpot; correct the won stages setting")


def test_all_pipelines_without_a_won_stage_is_setup_incomplete() -> None:
    with pytest.raises(SetupIncomplete, match="no stage of HubSpot's deal pipelines"):
        closed_won.won_stages("all-pipelines", [{"id": "p", "stages": [
            _stage("a", "true", "0.0"), _stage("b", "false", "1.0")]}])


def test_the_search_filter_stays_eq_closedwon_for_one_stage() -> None:
    assert closed_won.stage_filter(frozenset({"closedwon"})) == {
        "propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}
    assert closed_won.stage_filter(frozenset({"closedwon", "71900002"})) == {
        "propertyName": "dealstage", "operator": "IN", "values": ["71900002", "closedwon"]}


def test_qualifying_deals_and_why_lost_take_the_won_stages() -> None:
    won = frozenset({"closedwon", "71900002"})
    raws = [{"id": str(n), "properties": {"dealstage": s, "closedate": "2025-03-01"}}
            for n, s in enumerate(["closedwon", "71900002", "71900001"])]
    cutoff = D(2025, 1, 1)
    assert [r["id"] for r in closed_won.qualifying_deals(raws, cutoff, won)] == ["0", "1"]
    assert [r["id"] for r in closed_won.qualifying_deals(raws, cutoff)] == ["0"]
    assert closed_won.why_deal_lost(raws[1], cutoff, won) is None
    assert closed_won.why_deal_lost(raws[1], cutoff) == (
        "left closed won (its stage is now 71900002)")


def test_the_contract_guard_takes_the_won_stages() -> None:
    renewal = deal(dealstage="71900002")
    ctx = replace(deal_context(), won_stages=frozenset({"closedwon", "71900002"}))
    assert contract(the_deal=renewal, ctx=ctx).remote_id == "9001"
    with pytest.raises(MappingError, match=r"not closed won \(closedwon\)"):
        contract(the_deal=renewal)


@pytest.mark.parametrize(("typed", "saved"), [
    ("closedwon", "closedwon"), (" All-Pipelines ", "all-pipelines"),
    ("closedwon, 71900002 ,closedwon", "closedwon,71900002")])
def test_won_stages_values(typed: str, saved: str) -> None:
    assert won_stages_value(typed) == saved


@pytest.mark.parametrize("typed", ["", " , ", "closed won", "a\x00b", "x" * 101])
def test_won_stages_values_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="Settings not saved"):
        won_stages_value(typed)


# --- invoice parties ------------------------------------------------------------------------


def _invoice() -> Invoice:
    return Invoice.from_api({"id": "7001", "properties": {
        "hs_number": "INV-1", "hs_currency": "USD", "hs_invoice_date": "2025-02-01",
        "hs_due_date": "2025-03-01"}})


def _line() -> LineItem:
    return LineItem.from_api({"id": "201", "properties": {
        "name": "Consulting", "hs_product_id": "501", "quantity": "1", "price": "100"}})


GLOBEX = Company.from_api({"id": "11", "properties": {"name": "Globex Ltd", "city": "London"}})
ALICE = Contact(id="31", name="Alice Able", email="Alice@Example.com")


def test_r_inv_6_invoices_go_to_unknown_by_default() -> None:
    draft = map_invoice_to_sales_invoice(_invoice(), [_line()], deal_context(),
                                         party=Party(company=GLOBEX))
    assert draft.customer.is_placeholder and draft.company == CompanyDraft()


def test_hubspot_parties_take_the_company_and_the_configured_accounting_company() -> None:
    ctx = terms_context(invoice_parties=InvoiceParties.HUBSPOT)
    draft = map_invoice_to_sales_invoice(_invoice(), [_line()], ctx,
                                         party=Party(company=GLOBEX, contact=ALICE))
    assert (draft.customer.remote_id, draft.customer.name, draft.customer.city) == (
        "11", "Globex Ltd", "London")
    assert draft.company == CompanyDraft(name="Acme Ltd", is_placeholder=False, company_id=21)
    assert draft.total_amount == Decimal("100.00")


def test_without_a_company_the_contact_is_an_individual_customer() -> None:
    customer = customer_of(Party(contact=ALICE))
    assert (customer.remote_id, customer.name, customer.customer_type, customer.email,
            customer.is_placeholder) == (None, "Alice Able", CustomerType.INDIVIDUAL,
                                         "Alice@Example.com", False)


def test_a_contact_without_an_email_or_no_party_is_unknown() -> None:
    assert customer_of(Party(contact=Contact(id="32", name="No Mail", email=None))
                       ).is_placeholder
    assert customer_of(None).is_placeholder
    assert customer_of(Party()).is_placeholder


def test_a_contact_without_a_name_is_named_by_its_email() -> None:
    contact = Contact.of({"id": "33", "properties": {"email": " x@y.example ",
                                                     "firstname": "", "lastname": None}})
    assert customer_of(Party(contact=contact)).name == "x@y.example"


@pytest.mark.parametrize(("granted", "may"), [
    ("oauth crm.objects.invoices.read crm.objects.contacts.read", True),
    ("oauth crm.objects.invoices.read", False), ("", True), (None, True)])
def test_contacts_are_read_only_when_the_scope_was_granted(granted: str | None,
                                                           may: bool) -> None:
    assert may_read_contacts(granted) is may
