"""Typed models of HubSpot CRM records, as the API sends them (hubspot-api.md §2.2, §4).

A record is `{id, properties, createdAt, updatedAt, archived}`; every property value is a string
or null (§4.1). The per-type views (`Product`, `Company`, `Deal`, `LineItem`, `Invoice`) turn
the properties the map layer reads into typed values: `Decimal` for numbers, a UTC `date` for
dates and datetimes, trimmed strings, None for missing or blank. A value that is present but
unreadable raises `BadValue`, whose message names the record, the property and the value in an
accountant's words, and says what to fix in HubSpot.

Also here, because models and the map layer both need them without importing each other: the
map layer's outcomes (`MappingError`, `SkipRecord`) and the text cleaning used for values shown
in messages and stored in the ledger. No I/O, no Airflow imports.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from hubspot_ledger.ledger.records import RemoteType

# --- outcomes of mapping one record -------------------------------------------------------------


class MappingError(Exception):
    """A HubSpot record cannot become a ledger record. It goes to the errors log as one line
    (`message`) against `remote_type`/`remote_id`, counted as failed; the sync goes on."""

    skipped: ClassVar[bool] = False

    def __init__(self, remote_type: RemoteType, remote_id: str, message: str) -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_id = remote_id
        self.message = message


class SkipRecord(MappingError):
    """Nothing to import (R-DEAL-7 "No valid line items"): logged like an error, but counted
    as skipped, not failed. `detail` says why, for logs and tests."""

    skipped = True

    def __init__(self, remote_type: RemoteType, remote_id: str, message: str,
                 detail: str = "") -> None:
        super().__init__(remote_type, remote_id, message)
        self.detail = detail


class BadValue(MappingError):
    """A property is missing where required, or present but unreadable."""

    def __init__(self, record: HubSpotRecord, prop: str, value: str | None, problem: str,
                 fix: str = "correct it in HubSpot") -> None:
        shown = property_label(prop) if value is None else f"{property_label(prop)} {quote(value)}"
        super().__init__(record.REMOTE_TYPE, record.id,
                         f"{record.subject}: {shown} {problem}; {fix}")
        self.property = prop
        self.value = value


# Accountant's words for the properties we read; the HubSpot name follows in brackets so that
# whoever fixes it finds the field (e.g. `close date (closedate)`).
PROPERTY_LABELS = {
    "price": "unit price",
    "discount": "unit discount",
    "hs_discount_percentage": "discount percentage",
    "hs_product_id": "product",
    "closedate": "close date",
    "dealstage": "deal stage",
    "deal_currency_code": "currency",
    "hs_line_item_currency_code": "currency",
    "hs_currency": "currency",
    "hs_invoice_date": "invoice date",
    "hs_due_date": "due date",
}


def property_label(prop: str) -> str:
    label = PROPERTY_LABELS.get(prop)
    return f"{label} ({prop})" if label else prop


# --- text cleaning ------------------------------------------------------------------------------

NAME_MAX = 255  # names, SKUs, e-mails, phones, address parts: one line each
TEXT_MAX = 10_000  # descriptions and memos
QUOTE_MAX = 40  # a value quoted in an error message

# C0/C1 control characters except tab/newline/CR (handled separately), and lone surrogates,
# which PostgreSQL cannot store (NUL) or encode (surrogates).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BREAKS = re.compile("[\t\n\r\u2028\u2029]+")
_CRLF = re.compile("\r\n?|[\u2028\u2029]")


def _cap(text: str, limit: int) -> str:
    # Truncation is marked with an ellipsis so nobody mistakes the cut value for the whole.
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_line(value: str | None, limit: int = NAME_MAX) -> str | None:
    """A one-line value: line breaks and tabs become a space, control characters go, trimmed,
    capped at `limit` characters; blank → None."""
    if value is None:
        return None
    text = _CONTROL.sub("", _BREAKS.sub(" ", value)).strip()
    return _cap(text, limit) if text else None


def clean_text(value: str | None, limit: int = TEXT_MAX) -> str | None:
    """A multi-line value (descriptions): keeps newlines and tabs, drops other control
    characters, trims, caps at `limit`; blank → None."""
    if value is None:
        return None
    text = _CONTROL.sub("", _CRLF.sub("\n", value)).strip()
    return _cap(text, limit) if text else None


def quote(value: str) -> str:
    """A value as shown inside a one-line message."""
    return f'"{clean_line(value, QUOTE_MAX) or ""}"'


# --- value parsing ------------------------------------------------------------------------------

# Plain decimal notation only: Decimal() would also take "NaN", "Infinity" and "1_000".
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,4})?")
_EPOCH_MS = re.compile(r"\d{12,13}")  # 1973-03-03 … 2286-11-20 as milliseconds


def parse_decimal(text: str) -> Decimal | None:
    """`text` as a Decimal, or None when it is not a plain number ("1,000" is not: the comma
    could be a thousands or a decimal separator)."""
    if not _NUMBER.fullmatch(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        return None
    return value if value != 0 else Decimal(0)  # no "-0"


def parse_utc_date(text: str) -> dt.date | None:
    """A HubSpot date or datetime as its UTC calendar date (DESIGN "time zone"), or None.

    Accepts ISO-8601 datetimes with or without fractional seconds ("…T23:59:59.999Z" stays that
    day), with `Z` or an offset (converted to UTC) or none (taken as UTC); date-only
    "YYYY-MM-DD"; and epoch milliseconds, which some integrations write (§4.1). Shorter digit
    strings are refused: a 10-digit value is epoch *seconds*, and guessing would shift the date.
    """
    if _EPOCH_MS.fullmatch(text):
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC).date()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        moment = dt.datetime.fromisoformat(text)
        return moment.date() if moment.tzinfo is None else moment.astimezone(dt.UTC).date()
    except (ValueError, OverflowError):  # overflow: an offset pushing year 1 or 9999 past the end
        return None


# --- records ------------------------------------------------------------------------------------


class HubSpotRecord(BaseModel):
    """One CRM record as HubSpot's v3 objects API returns it (camelCase JSON)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True,
                              validate_by_alias=True, frozen=True, extra="ignore")

    REMOTE_TYPE: ClassVar[RemoteType]
    LABEL: ClassVar[str] = "Record"
    NAME_PROPERTY: ClassVar[str | None] = None
    PROPERTIES: ClassVar[tuple[str, ...]] = ()  # what the map layer reads (for the extract)

    id: str
    properties: dict[str, str | None] = {}
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    archived: bool = False
    archived_at: dt.datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # The v4 associations API sends ids as numbers (§2.5); records carry strings.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("id is blank")
        return value.strip() if isinstance(value, str) else value

    @field_validator("properties", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        # Property values are strings (§4.1); a client that sent JSON numbers or booleans
        # still means the same value, so keep it as HubSpot would have written it.
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value
        return {k: _as_text(v) for k, v in value.items()}

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Self:
        """Parse one record; a record of the wrong shape is a MappingError, not a crash."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            if not hasattr(cls, "REMOTE_TYPE"):  # the generic base: no type to report against
                raise
            remote_id = str(raw.get("id", "")).strip() if isinstance(raw, dict) else ""
            where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:3])
            subject = f"{cls.LABEL} {remote_id}".strip()
            raise MappingError(cls.REMOTE_TYPE, remote_id or "?",
                               f"{subject}: HubSpot sent a record this sync cannot read "
                               f"({where}); check the record in HubSpot") from None

    # -- typed access ----------------------------------------------------------------------

    def text(self, prop: str) -> str | None:
        """The property trimmed; None when missing or blank."""
        value = self.properties.get(prop)
        if value is None or not value.strip():
            return None
        return value.strip()

    def decimal(self, prop: str) -> Decimal | None:
        raw = self.text(prop)
        if raw is None:
            return None
        value = parse_decimal(raw)
        if value is None:
            raise BadValue(self, prop, raw, "is not a number", "enter a plain number in HubSpot")
        return value

    def date(self, prop: str) -> dt.date | None:
        raw = self.text(prop)
        if raw is None:
            return None
        value = parse_utc_date(raw)
        if value is None:
            raise BadValue(self, prop, raw, "is not a date", "pick the date again in HubSpot")
        return value

    def required(self, prop: str, value: Any, fix: str = "set it in HubSpot") -> Any:
        """`value` (already parsed from `prop`), or BadValue naming the missing property."""
        if value is None:
            raise BadValue(self, prop, None, "is missing", fix)
        return value

    @property
    def display_name(self) -> str | None:
        return clean_line(self.properties.get(self.NAME_PROPERTY or ""), QUOTE_MAX)

    @property
    def subject(self) -> str:
        """How messages name the record: `Line item 123 ("Consulting")`."""
        name = self.display_name
        return f'{self.LABEL} {self.id} ("{name}")' if name else f"{self.LABEL} {self.id}"


def _as_text(value: Any) -> Any:
    # HubSpot sends strings. A float here was a JSON number parsed by some client; its shortest
    # repr is the literal that was sent (up to ~15 significant digits), so no money is invented.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


class Product(HubSpotRecord):
    REMOTE_TYPE = RemoteType.PRODUCT
    LABEL = "Product"
    NAME_PROPERTY = "name"
    PROPERTIES = ("name", "description", "hs_sku", "hs_product_type", "price")

    @property
    def sku(self) -> str | None:
        return self.text("hs_sku")

    @property
    def name(self) -> str | None:
        return self.text("name")

    @property
    def description(self) -> str | None:
        return self.text("description")

    @property
    def product_type(self) -> str | None:
        return self.text("hs_product_type")


class Company(HubSpotRecord):
    REMOTE_TYPE = RemoteType.COMPANY
    LABEL = "Company"
    NAME_PROPERTY = "name"
    PROPERTIES = ("name", "domain")  # plus the fields of company_to_customer.yaml

    @property
    def name(self) -> str | None:
        return self.text("name")

    @property
    def domain(self) -> str | None:
        return self.text("domain")


class Deal(HubSpotRecord):
    REMOTE_TYPE = RemoteType.DEAL
    LABEL = "Deal"
    NAME_PROPERTY = "dealname"
    PROPERTIES = ("dealname", "dealstage", "pipeline", "closedate", "deal_currency_code",
                  "description")

    @property
    def name(self) -> str | None:
        return self.text("dealname")

    @property
    def stage(self) -> str | None:
        return self.text("dealstage")

    @property
    def close_date(self) -> dt.date | None:
        return self.date("closedate")

    @property
    def currency_code(self) -> str | None:
        return self.text("deal_currency_code")

    @property
    def description(self) -> str | None:
        return self.properties.get("description")  # cleaned (keeping newlines) by the mapper


class LineItem(HubSpotRecord):
    REMOTE_TYPE = RemoteType.LINE_ITEM
    LABEL = "Line item"
    NAME_PROPERTY = "name"
    PROPERTIES = ("name", "description", "hs_product_id", "hs_sku", "quantity", "price",
                  "discount", "hs_discount_percentage", "hs_line_item_currency_code", "amount")

    @property
    def name(self) -> str | None:
        return self.text("name")

    @property
    def description(self) -> str | None:
        return self.text("description")

    @property
    def product_id(self) -> str | None:
        return self.text("hs_product_id")

    @property
    def sku(self) -> str | None:
        return self.text("hs_sku")

    @property
    def quantity(self) -> Decimal | None:
        return self.decimal("quantity")

    @property
    def unit_price(self) -> Decimal | None:
        return self.decimal("price")

    @property
    def unit_discount(self) -> Decimal | None:
        """`discount` is a per-unit amount (hubspot-api.md, "Addendum: line-item discounts")."""
        return self.decimal("discount")

    @property
    def discount_percentage(self) -> Decimal | None:
        """`hs_discount_percentage`, in percent (20 = 20 %), applied to the line total."""
        return self.decimal("hs_discount_percentage")

    @property
    def currency_code(self) -> str | None:
        return self.text("hs_line_item_currency_code")


class Invoice(HubSpotRecord):
    REMOTE_TYPE = RemoteType.INVOICE
    LABEL = "Invoice"
    NAME_PROPERTY = "hs_number"
    PROPERTIES = ("hs_number", "hs_invoice_date", "hs_due_date", "hs_currency",
                  "hs_invoice_status")

    @property
    def number(self) -> str | None:
        return self.text("hs_number")

    @property
    def invoice_date(self) -> dt.date | None:
        return self.date("hs_invoice_date")

    @property
    def due_date(self) -> dt.date | None:
        return self.date("hs_due_date")

    @property
    def currency_code(self) -> str | None:
        return self.text("hs_currency")
