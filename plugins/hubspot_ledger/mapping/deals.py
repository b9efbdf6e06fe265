"""Closed-won deals → draft contracts with one performance obligation per line (R-DEAL-1…7)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from hubspot_ledger.drafts import (
    ContractDraft,
    CustomerDraft,
    ObligationDraft,
    placeholder_customer,
)
from hubspot_ledger.extract.models import (
    CLOSED_WON,
    TEXT_MAX,
    Company,
    Deal,
    LineItem,
    MappingError,
    Product,
    clean_line,
    clean_text,
    quote,
)
from hubspot_ledger.load.records import ContractStatus, Recognition
from hubspot_ledger.mapping.companies import map_company_to_customer
from hubspot_ledger.mapping.context import MappingContext
from hubspot_ledger.mapping.lines import (
    amount_warnings,
    line_description,
    line_item,
    line_product_id,
    not_imported,
    priced_lines,
    skip_no_valid_lines,
    unique_lines,
)
from hubspot_ledger.mapping.money import LineMoney, currency_of, total_of
from hubspot_ledger.mapping.terms import IMMEDIATE, Recognized, recognized


def map_deal_to_contract(deal: Deal, line_items: Sequence[LineItem], context: MappingContext,
                         *, company: Company | None = None,
                         products: Mapping[str, Product] | None = None) -> ContractDraft:
    """A draft contract from a closed-won deal, its line items, its primary company (None when
    the deal has none) and the products its lines sell, by product id (those the caller could
    read). Raises MappingError (the deal is not imported) or SkipRecord ("No valid line items").
    """
    _check_closed_won(deal, context.won_stages)
    contract_date = deal.required("closedate", deal.close_date, "set the close date in HubSpot")
    currency = currency_of(deal, "deal_currency_code", context.currency)
    lines = unique_lines(line_items)
    if not lines:
        raise skip_no_valid_lines(deal, "the deal has no line items")
    priced = list(priced_lines(deal, lines, currency))
    # R-DEAL-7: nothing to recognise when every line nets to zero (zero quantity or price, or
    # fully discounted); a zero line inside a valid deal stays, as a zero obligation.
    if all(money.net == 0 for _, money in priced):
        raise skip_no_valid_lines(deal, "every line item's amount is zero")
    obligations = tuple(_obligation(deal, line, money, products or {}, context,
                                    contract_date) for line, money in priced)
    return ContractDraft(
        remote_id=deal.id, status=ContractStatus.DRAFT,
        company_id=context.setting_id("company_id"), customer=_customer(company),
        name=clean_line(deal.name) or f"HubSpot deal {deal.id}", memo=_memo(deal, context),
        currency=currency.code, contract_date=contract_date,
        total_amount=total_of(deal, currency, (o.amount for o in obligations)),
        obligations=obligations,
        # DESIGN "obligation money": the ledger keeps its own figure; a different HubSpot
        # `amount` is only reported (R-DEAL-3).
        warnings=amount_warnings(deal, priced, currency),
    )


def _check_closed_won(deal: Deal, won: frozenset[str]) -> None:
    # Choosing deals is the extract's job; this guard keeps an open or lost deal (or one in a
    # stage the won-stages setting does not count) from ever becoming a contract if a caller
    # gets that wrong.
    stage = deal.stage
    if stage not in won:
        shown = f"stage {quote(stage)}" if stage else "no stage"
        stages = ", ".join(sorted(won)) if won else CLOSED_WON
        raise MappingError(deal.REMOTE_TYPE, deal.id,
                           f"{deal.subject} is in {shown}, not closed won ({stages}); only "
                           "closed-won deals become contracts")


def _customer(company: Company | None) -> CustomerDraft:
    """R-DEAL-4: the primary company, which the loader maps or creates; else "Unknown"."""
    return placeholder_customer() if company is None else map_company_to_customer(company)


def _memo(deal: Deal, context: MappingContext) -> str:
    """R-DEAL-5: the deal's description, a blank line, and the link to the deal in HubSpot."""
    link = context.deal_link(deal.id)
    description = clean_text(deal.description, TEXT_MAX)
    return f"{description}\n\n{link}" if description else link


def _obligation(deal: Deal, line: LineItem, money: LineMoney, products: Mapping[str, Product],
                context: MappingContext, close_date: dt.date) -> ObligationDraft:
    product_id = line_product_id(deal, line)
    item = line_item(deal, line, product_id, products, context)
    recognition = _recognition(deal, line, context, close_date)
    return ObligationDraft(
        remote_id=line.id, product_id=product_id, item=item,
        description=line_description(line, item), quantity=money.quantity,
        unit_price=money.unit_price,
        # DESIGN "obligation money": a percentage keeps discount_amount empty; a fixed
        # discount is the line's whole discount (per-unit discount × quantity).
        discount_percent=money.discount_percent,
        discount_amount=money.discount_total if money.unit_discount is not None else None,
        amount=money.net, recognition_strategy=recognition.strategy,
        service_start_date=recognition.service_start,
        service_end_date=recognition.service_end,
    )


def _recognition(deal: Deal, line: LineItem, context: MappingContext, close_date: dt.date
                 ) -> Recognized:
    """R-DEAL-6: `immediate`; with `--recognition hubspot-terms`, a line with a recurring term
    is ratable over its service period (mapping.terms). A malformed term fails the deal,
    naming the line."""
    if context.settings.recognition != Recognition.HUBSPOT_TERMS:
        return IMMEDIATE
    try:
        return recognized(line, close_date)
    except MappingError as exc:
        raise not_imported(deal, exc) from None
