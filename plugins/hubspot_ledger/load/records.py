"""Typed records of the ledger and its vocabularies (DESIGN.md, "Ledger data contract").

The enumerations mirror the check constraints of `include/migrations/`; a test holds the two
together. No I/O and no Airflow imports: the map layer and the DAG factory import this freely.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class IntegrationStatus(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    ERROR = "error"


class Provider(StrEnum):
    HUBSPOT = "hubspot"


class CustomerType(StrEnum):
    COMPANY = "company"
    INDIVIDUAL = "individual"


class ItemType(StrEnum):
    SERVICE = "service"
    GOODS = "goods"


class ContractStatus(StrEnum):
    """The sync writes DRAFT, and VOID for a draft whose HubSpot record no longer qualifies
    (DESIGN "lost deals and invoices"); a document accountants moved on is never overwritten.
    Invoices use the same words."""

    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    VOID = "void"


class RecognitionStrategy(StrEnum):
    IMMEDIATE = "immediate"
    RATABLE = "ratable"


class InvoiceParties(StrEnum):
    """Whom an imported invoice is made out to (issue 14, item 1)."""

    UNKNOWN = "unknown"  # R-INV-6: the "Unknown" customer and company
    HUBSPOT = "hubspot"  # its associated company, else contact, else "Unknown"


class Recognition(StrEnum):
    """How a deal's lines are recognized (issue 14, item 3)."""

    IMMEDIATE = "immediate"  # R-DEAL-6: every obligation at once
    HUBSPOT_TERMS = "hubspot-terms"  # a line with a recurring term: ratable over its term


# The won-stages setting (issue 14, item 2): HubSpot's internal `closedwon` only (R-DEAL-3),
# every stage a deal pipeline marks closed won, or an explicit list of stage ids.
WON_CLOSEDWON = "closedwon"
WON_ALL_PIPELINES = "all-pipelines"


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


class SyncRunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class RemoteType(StrEnum):
    """HubSpot object types, as written to integration_records and integration_errors."""

    PRODUCT = "product"
    COMPANY = "company"
    DEAL = "deal"
    LINE_ITEM = "line_item"
    INVOICE = "invoice"


class ProblemCause(StrEnum):
    """Where an open problem's cause lies, which decides when the record is retried (issue 12;
    migration 0019)."""

    # The HubSpot record itself or its line items: only a change HubSpot reports (the record
    # or a line modified or deleted) can fix it, and the incremental read finds that change.
    HUBSPOT = "hubspot"
    # Anything else — the ledger (a locked period, a SKU another item has, a refused row), the
    # settings, or another HubSpot record it depends on (the product a line sells): read
    # again by id every run. Entries without a cause (older than 0019) count as this.
    LEDGER = "ledger"


@dataclass(frozen=True, slots=True)
class IntegrationSummary:
    """What the DAG factory needs to know about one integration to build its DAG.

    JSON round-trips through `to_dict`/`from_dict`, because the factory caches the last list it
    read so that a ledger outage never makes the DAGs disappear.
    """

    id: int
    organization_id: int
    organization_name: str
    status: IntegrationStatus
    schedule: str
    cutoff_date: dt.date

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["cutoff_date"] = self.cutoff_date.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntegrationSummary:
        return cls(
            id=int(data["id"]),
            organization_id=int(data["organization_id"]),
            organization_name=str(data["organization_name"]),
            status=IntegrationStatus(data["status"]),
            schedule=str(data["schedule"]),
            cutoff_date=dt.date.fromisoformat(str(data["cutoff_date"])),
        )


@dataclass(frozen=True, slots=True)
class Integration:
    """One integration row. Token fields hold ciphertext and are kept out of repr()."""

    id: int
    organization_id: int
    organization_name: str
    status: IntegrationStatus
    status_message: str | None
    remote_id: str | None
    currency: str | None
    ui_domain: str | None
    cutoff_date: dt.date
    schedule: str
    expires_in: int | None
    scope: str | None
    token_created_at: dt.datetime | None
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    def expires_at(self) -> dt.datetime | None:
        if self.token_created_at is None or self.expires_in is None:
            return None
        return self.token_created_at + dt.timedelta(seconds=self.expires_in)


@dataclass(frozen=True, slots=True)
class TokenUpdate:
    """New token values to store (ciphertext) after a code exchange or a refresh."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str
    token_created_at: dt.datetime


# Settings columns that name an account, in the order R-SET-1 lists them.
ACCOUNT_SETTINGS = ("ar_account_id", "deferred_revenue_account_id", "expense_account_id",
                    "income_account_id", "clearing_account_id")


@dataclass(frozen=True, slots=True)
class IntegrationSettings:
    """An integration's settings; accounts by code and the company by name, None when unset
    or pointing at a deleted record (R-SET-3)."""

    integration_id: int
    organization_id: int
    ar_account: str | None
    deferred_revenue_account: str | None
    expense_account: str | None
    income_account: str | None
    clearing_account: str | None
    company: str | None
    sync_invoices: bool
    ids: dict[str, int | None] = field(default_factory=dict, repr=False)
    # Issue 14: each off by default (the reference connector's behaviour).
    invoice_parties: InvoiceParties = InvoiceParties.UNKNOWN
    won_stages: str = WON_CLOSEDWON
    recognition: Recognition = Recognition.IMMEDIATE

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in (
            "integration_id", "ar_account", "deferred_revenue_account", "expense_account",
            "income_account", "clearing_account", "company", "sync_invoices")}
        return {**data, "invoice_parties": str(self.invoice_parties),
                "won_stages": self.won_stages, "recognition": str(self.recognition)}


@dataclass(frozen=True, slots=True)
class IntegrationError:
    id: int
    sync_run_id: int | None
    remote_type: str | None
    remote_id: str | None
    message: str
    created_at: dt.datetime
    # NULL while the record still fails (an open problem); warnings are settled when logged.
    resolved_at: dt.datetime | None = None
    severity: str = "error"
    last_seen_at: dt.datetime | None = None
    # Open problems: where the cause lies (ProblemCause); None for warnings and older entries.
    cause: str | None = None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "resolved_at", "last_seen_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        data["open"] = self.is_open
        return data
