"""Reconciliation: HubSpot's closed-won totals by month and currency beside the ledger's
contracts and invoices, every difference explained (issue 15 item 3, the operator page's panel).

Pure: the caller reads HubSpot (the deals) and the ledger (contracts, invoices, open problems)
and hands them over; this module only compares, with pandas, and exports CSV. No I/O, no Airflow.

A deal's row says what happened to it:

| outcome           | when                                                                   |
|-------------------|------------------------------------------------------------------------|
| `imported`        | closed won in HubSpot, a contract in the ledger (amounts may differ)    |
| `failed`          | closed won in HubSpot, no contract: an open problem says why            |
| `skipped`         | closed won in HubSpot, no contract: "No valid line items" (R-DEAL-7)    |
| `not synced yet`  | closed won in HubSpot, no contract and no problem: a later run brings it|
| `void`            | the contract is void in the ledger (the deal left closed won)           |
| `only in ledger`  | a draft contract whose deal is no longer closed won: the next run voids it |

Money stays Decimal (object columns), never float. Month and currency are HubSpot's close date
(UTC, as the sync stores it) and the deal's currency; a ledger-only row uses the contract's.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

SKIP_MESSAGE = "No valid line items"  # mapping.lines.NO_VALID_LINES (R-DEAL-7)
VOID = "void"
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

IMPORTED, FAILED, SKIPPED, NOT_SYNCED, VOIDED, ONLY_LEDGER = (
    "imported", "failed", "skipped", "not synced yet", "void", "only in ledger")
EXPLAINED = (FAILED, SKIPPED, NOT_SYNCED, VOIDED, ONLY_LEDGER)

DETAIL_COLUMNS = ["month", "currency", "deal_id", "deal", "in_hubspot", "hubspot_amount",
                  "ledger_amount", "contract_status", "outcome", "explanation"]
SUMMARY_COLUMNS = ["month", "currency", "hubspot_deals", "hubspot_closed_won",
                   "ledger_contracts", "ledger_contract_total", "ledger_invoices",
                   "ledger_invoice_total", "difference", "explanation"]


@dataclass(frozen=True)
class HubSpotDeal:
    """A closed-won deal as HubSpot reports it (`amount` None: HubSpot has none)."""

    id: str
    name: str
    close_date: dt.date
    currency: str
    amount: Decimal | None


@dataclass(frozen=True)
class LedgerDocument:
    """A contract or invoice of the integration, by the HubSpot id it came from."""

    remote_id: str
    name: str
    status: str
    date: dt.date
    currency: str
    total: Decimal


@dataclass(frozen=True)
class Reconciliation:
    summary: pd.DataFrame  # SUMMARY_COLUMNS, one row per (month, currency)
    detail: pd.DataFrame  # DETAIL_COLUMNS, one row per deal with something to say


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _deal_row(deal: HubSpotDeal, contract: LedgerDocument | None,
              problem: str | None) -> dict[str, object]:
    row: dict[str, object] = {
        "month": _month(deal.close_date), "currency": deal.currency, "deal_id": deal.id,
        "deal": deal.name, "in_hubspot": True, "hubspot_amount": deal.amount,
        "ledger_amount": contract.total if contract else None,
        "contract_status": contract.status if contract else ""}
    if contract is None:
        if problem is None:
            row.update(outcome=NOT_SYNCED, explanation="no contract and no open problem: the "
                                                       "next sync reads it")
        elif problem.startswith(SKIP_MESSAGE):
            row.update(outcome=SKIPPED, explanation=problem)
        else:
            row.update(outcome=FAILED, explanation=problem)
    elif contract.status == VOID:
        row.update(outcome=VOIDED, explanation="the contract is void, yet the deal is closed "
                                               "won in HubSpot: the next sync restores it")
    elif deal.amount is not None and deal.amount != contract.total:
        row.update(outcome=IMPORTED,
                   explanation=f"HubSpot's deal amount {deal.amount} differs from the "
                               f"contract's total {contract.total} (the sum of its lines)")
    else:
        row.update(outcome=IMPORTED, explanation="")
    return row


def _ledger_only_row(contract: LedgerDocument) -> dict[str, object]:
    void = contract.status == VOID
    return {"month": _month(contract.date), "currency": contract.currency,
            "deal_id": contract.remote_id, "deal": contract.name, "in_hubspot": False,
            "hubspot_amount": None,
            "ledger_amount": contract.total, "contract_status": contract.status,
            "outcome": VOIDED if void else ONLY_LEDGER,
            "explanation": ("the deal is no longer closed won in HubSpot (or closes before the "
                            "cutoff); the contract was voided") if void else
                           ("the deal is no longer closed won in HubSpot (or closes before the "
                            "cutoff); the next sync voids the draft")}


def detail_rows(deals: Iterable[HubSpotDeal], contracts: Iterable[LedgerDocument],
                deal_problems: Mapping[str, str]) -> pd.DataFrame:
    """One row per deal (HubSpot's closed-won deals and the ledger's contracts, outer-joined
    on the deal id); `deal_problems`: deal id → its open problem's message."""
    by_id = {c.remote_id: c for c in contracts}
    seen: set[str] = set()
    rows = []
    for deal in deals:
        seen.add(deal.id)
        rows.append(_deal_row(deal, by_id.get(deal.id), deal_problems.get(deal.id)))
    rows.extend(_ledger_only_row(c) for c in by_id.values() if c.remote_id not in seen)
    frame = pd.DataFrame(rows, columns=DETAIL_COLUMNS, dtype=object)
    return frame.sort_values(["month", "currency", "deal_id"], kind="stable",
                             ignore_index=True)


def _total(values: pd.Series) -> Decimal:
    return sum((v for v in values if isinstance(v, Decimal)), Decimal(0))


def _explain(group: pd.DataFrame) -> str:
    parts = []
    for outcome in EXPLAINED:
        rows = group[group["outcome"] == outcome]
        if len(rows):
            amount = _total(rows["hubspot_amount"]) if outcome not in (VOIDED, ONLY_LEDGER) \
                else _total(rows["ledger_amount"])
            parts.append(f"{len(rows)} {outcome} ({amount})")
    differs = group[(group["outcome"] == IMPORTED) & (group["explanation"] != "")]
    if len(differs):
        parts.append(f"{len(differs)} imported with another amount "
                     f"({_total(differs['hubspot_amount']) - _total(differs['ledger_amount'])})")
    return "; ".join(parts)


def reconcile(deals: Sequence[HubSpotDeal], contracts: Sequence[LedgerDocument],
              invoices: Sequence[LedgerDocument], deal_problems: Mapping[str, str]
              ) -> Reconciliation:
    """HubSpot's closed-won totals against the ledger, by month and currency."""
    detail = detail_rows(deals, contracts, deal_problems)
    keys = ["month", "currency"]
    summaries: dict[tuple[str, str], dict[str, object]] = {}

    def entry(key: tuple[str, str]) -> dict[str, object]:
        return summaries.setdefault(key, {
            "month": key[0], "currency": key[1], "hubspot_deals": 0,
            "hubspot_closed_won": Decimal(0), "ledger_contracts": 0,
            "ledger_contract_total": Decimal(0), "ledger_invoices": 0,
            "ledger_invoice_total": Decimal(0), "explanation": ""})

    for key, group in detail.groupby(keys, sort=True):
        month, currency = str(key[0]), str(key[1])
        summary = entry((month, currency))
        in_hubspot = group[group["in_hubspot"] == True]  # noqa: E712 - an object column
        live = group[(group["contract_status"] != VOID) & group["ledger_amount"].notna()]
        summary.update(hubspot_deals=len(in_hubspot),
                       hubspot_closed_won=_total(in_hubspot["hubspot_amount"]),
                       ledger_contracts=len(live),
                       ledger_contract_total=_total(live["ledger_amount"]),
                       explanation=_explain(group))
    for invoice in invoices:
        if invoice.status == VOID:
            continue
        summary = entry((_month(invoice.date), invoice.currency))
        summary["ledger_invoices"] = int(str(summary["ledger_invoices"])) + 1
        total = summary["ledger_invoice_total"]
        assert isinstance(total, Decimal)
        summary["ledger_invoice_total"] = total + invoice.total
    rows = []
    for key in sorted(summaries):
        summary = summaries[key]
        hubspot, ledger = summary["hubspot_closed_won"], summary["ledger_contract_total"]
        assert isinstance(hubspot, Decimal) and isinstance(ledger, Decimal)
        rows.append({**summary, "difference": hubspot - ledger})
    return Reconciliation(summary=pd.DataFrame(rows, columns=SUMMARY_COLUMNS, dtype=object),
                          detail=detail)


def neutralise(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; numbers,
    dates and other text are kept as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """`frame` as CSV text, every text cell neutralised (see `neutralise`). Money is written
    from its Decimal as is (no float round trip)."""
    safe = frame.map(neutralise)
    safe.columns = [str(neutralise(c)) for c in safe.columns]
    buffer = io.StringIO()
    safe.to_csv(buffer, index=False, lineterminator="\r\n")
    return buffer.getvalue()
