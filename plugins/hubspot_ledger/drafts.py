"""What the map layer hands the loader: frozen drafts of ledger rows.

Drafts name HubSpot records by their remote ids (the loader resolves them to ledger ids through
`integration_records`); the only ledger ids they carry are the accounts and the accounting
company taken from the integration's settings. Money is `Decimal`, already rounded to what the
ledger columns hold; dates are `date`s (UTC, DESIGN "time zone").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from hubspot_ledger.load.records import (
    ContractStatus,
    CustomerType,
    ItemType,
    RecognitionStrategy,
    RemoteType,
)

PLACEHOLDER_NAME = "Unknown"
# Metadata of a field a draft reports but does not write (its warnings): left out of the
# fingerprint, so that a re-run with the same HubSpot data is still "unchanged".
NOT_WRITTEN = {"fingerprint": False}
# Metadata of a field added after fingerprints were first stored (issue 14): fingerprinted only
# when set, so that a record whose draft leaves it unset keeps the fingerprint it had.
ADDED = {"fingerprint": "when set"}


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """An item from a HubSpot product (R-PROD-1…4). `remote_id` is the product id."""

    REMOTE_TYPE: ClassVar[RemoteType] = RemoteType.PRODUCT

    remote_id: str
    sku: str
    name: str
    description: str | None
    item_type: ItemType
    income_account_id: int
    expense_account_id: int
    deferred_revenue_account_id: int | None  # service items only (R-PROD-4)


@dataclass(frozen=True, slots=True)
class CustomerDraft:
    """A customer from a HubSpot company (R-COMP-2), or the "Unknown" placeholder
    (`remote_id` None, `is_placeholder` True; one per organization, DESIGN "placeholders")."""

    REMOTE_TYPE: ClassVar[RemoteType] = RemoteType.COMPANY

    remote_id: str | None
    name: str
    customer_type: CustomerType = CustomerType.COMPANY
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    is_placeholder: bool = False


@dataclass(frozen=True, slots=True)
class CompanyDraft:
    """The "Unknown" accounting company (entity) invoices post against (R-INV-6), or the
    integration's configured one (`company_id`; issue 14, `--invoice-parties hubspot`)."""

    name: str = PLACEHOLDER_NAME
    currency: str | None = None
    is_placeholder: bool = True
    company_id: int | None = field(default=None, metadata=ADDED)


@dataclass(frozen=True, slots=True)
class ObligationDraft:
    """A performance obligation from one deal line item (R-DEAL-2, R-DEAL-3, R-DEAL-6).

    `item` is drafted from the line's product so that the loader can create it on the spot when
    the product has no mapping yet (R-DEAL-2); when it has one, the loader uses the mapped item.
    """

    REMOTE_TYPE: ClassVar[RemoteType] = RemoteType.LINE_ITEM

    remote_id: str
    product_id: str
    # Only used to create the item when the product has none yet: the obligation points at the
    # product's mapped item whichever way that item was drafted, so it is not fingerprinted.
    item: ItemDraft = field(metadata=NOT_WRITTEN)
    description: str | None
    quantity: Decimal  # numeric(20,6)
    unit_price: Decimal  # numeric(20,6)
    discount_percent: Decimal | None  # numeric(9,6), 0..100; set for a percentage discount
    discount_amount: Decimal | None  # the line's whole fixed discount; set for a fixed one
    amount: Decimal  # net, rounded to the currency (DESIGN "obligation money")
    recognition_strategy: RecognitionStrategy = RecognitionStrategy.IMMEDIATE
    # The service period of a ratable obligation (issue 14, `--recognition hubspot-terms`).
    service_start_date: dt.date | None = field(default=None, metadata=ADDED)
    service_end_date: dt.date | None = field(default=None, metadata=ADDED)


@dataclass(frozen=True, slots=True)
class ContractDraft:
    """A draft contract from a closed-won deal (R-DEAL-1…7). `remote_id` is the deal id."""

    REMOTE_TYPE: ClassVar[RemoteType] = RemoteType.DEAL

    remote_id: str
    company_id: int  # the integration's accounting company (settings)
    customer: CustomerDraft  # the deal's primary company, or the placeholder (R-DEAL-4)
    name: str
    memo: str
    currency: str
    contract_date: dt.date
    total_amount: Decimal  # sum of the obligations' amounts
    obligations: tuple[ObligationDraft, ...]
    status: ContractStatus = ContractStatus.DRAFT
    # For the errors log: one per line whose HubSpot `amount` differs from the obligation's
    # (DESIGN "obligation money"); not written, so neither compared nor fingerprinted.
    warnings: tuple[str, ...] = field(default=(), compare=False, metadata=NOT_WRITTEN)


@dataclass(frozen=True, slots=True)
class InvoiceLineDraft:
    """A sales invoice line from a HubSpot invoice line item, or the separate negative line of
    its discount (`is_discount`, R-INV-4; DESIGN "invoice discount line")."""

    REMOTE_TYPE: ClassVar[RemoteType] = RemoteType.LINE_ITEM

    remote_id: str  # the HubSpot line item id (also for its discount line)
    product_id: str
    item: ItemDraft = field(metadata=NOT_WRITTEN)  # as ObligationDraft.item
    description: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    is_discount: bool = False

    @property
    def remote_key(self) -> str:
        """Unique per invoice line: a discount line shares its line item's remote id."""
        return f"{self.remote_id}:discount" if self.is_discount else self.remote_id


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """A sales invoice from a HubSpot invoice (R-INV-1…6). `remote_id` is the invoice id."""

    REMOTE_TYPE: ClassVar[RemoteType] = RemoteType.INVOICE

    remote_id: str
    number: str
    invoice_date: dt.date
    due_date: dt.date
    currency: str
    total_amount: Decimal
    lines: tuple[InvoiceLineDraft, ...]
    customer: CustomerDraft = field(default_factory=lambda: placeholder_customer())
    company: CompanyDraft = field(default_factory=CompanyDraft)
    # For the errors log: one per line whose HubSpot `amount` differs from its line less its
    # discount line (DESIGN "obligation money"); not written, so neither compared nor
    # fingerprinted.
    warnings: tuple[str, ...] = field(default=(), compare=False, metadata=NOT_WRITTEN)


def placeholder_customer() -> CustomerDraft:
    """The organization's one "Unknown" customer (R-DEAL-4, R-INV-6)."""
    return CustomerDraft(remote_id=None, name=PLACEHOLDER_NAME, is_placeholder=True)


def placeholder_company() -> CompanyDraft:
    """The organization's one "Unknown" accounting company, for invoices (R-INV-6)."""
    return CompanyDraft()


Draft = ItemDraft | CustomerDraft | ContractDraft | InvoiceDraft


def fingerprint(draft: Draft) -> str:
    """A stable hash of everything a draft would write, for `integration_records.fingerprint`:
    equal drafts hash equal, so the loader can tell an unchanged record without rewriting it."""
    payload = json.dumps(_plain(draft), default=_json_value, sort_keys=True,
                         separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` without its deep copies and without what a draft does not write
    (NOT_WRITTEN). Fingerprints are on the load's hot path (one per record of every run), so
    each class's written fields are looked up once."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    try:
        names = _WRITTEN[cls]
    except KeyError:
        names = _WRITTEN[cls] = (
            tuple(f.name for f in fields(cls) if f.metadata.get("fingerprint", True))
            if is_dataclass(cls) else None)
        _ADDED[cls] = frozenset(f.name for f in fields(cls) if f.metadata == ADDED) \
            if is_dataclass(cls) else frozenset()
    if names is not None:
        return {name: _plain(got) for name in names
                if (got := getattr(value, name)) is not None or name not in _ADDED[cls]}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# Values `_plain` hands to JSON as they are; `_json_value` spells Decimals and dates.
_SCALARS = frozenset({str, int, bool, type(None), Decimal, dt.date})
_WRITTEN: dict[type, tuple[str, ...] | None] = {}
_ADDED: dict[type, frozenset[str]] = {}


def _json_value(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal | dt.date):
        return str(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")
