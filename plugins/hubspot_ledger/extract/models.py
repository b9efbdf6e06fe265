"""Typed models of HubSpot CRM records, as the API sends them (hubspot-api.md §2.2, §4).

A record is `{id, properties, createdAt, updatedAt, archived}`; every property value is a string
or null (§4.1). The per-type views (`Product`, `Company`, `Deal`, `LineItem`, `Invoice`) turn
the properties the map layer reads into typed values: `Decimal` for numbers, a UTC `date` for
dates and datetimes, trimmed strings, None for missing or blank. A value that is present but
unreadable raises `BadValue`, whose message names the record, the property and the value in an
accountant's words, and says what to fix in HubSpot.

Also here, because models and the map layer both need them without importing each other: the
map layer's outcomes (`MappingError`, `SkipRecord`), `valid_unicode` for raw pages, and the text
rules for values shown in messages and stored in the ledger (issue 13, "text safe by
construction"): invalid Unicode is replaced, identity text (SKU, invoice number) is refused when
too long and never cut, display text is cut with a visible "…". No I/O, no Airflow imports.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from hubspot_ledger.load.records import ProblemCause, RemoteType

# --- outcomes of mapping one record -------------------------------------------------------------


# HubSpot's internal id of the closed-won stage of the default pipeline: the only stage whose
# deals become contracts (R-DEAL-1; DESIGN "closed-won"), whatever its label says.
CLOSED_WON = "closedwon"


class MappingError(Exception):
    """A HubSpot record cannot become a ledger record. It goes to the errors log as one line
    (`message`) against `remote_type`/`remote_id`, counted as failed; the sync goes on.

    `cause` says where the fix lies (ProblemCause): by default in the record's own data or its
    line items, so the record is retried when HubSpot changes them; an error that depends on
    something else (a product's data, the portal's currency) says LEDGER and is retried every
    run."""

    skipped: ClassVar[bool] = False

    def __init__(self, remote_type: RemoteType, remote_id: str, message: str, *,
                 cause: ProblemCause = ProblemCause.HUBSPOT) -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_id = remote_id
        self.message = message
        self.cause = cause


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
    "hs_sku": "SKU",
    "hs_number": "invoice number",
    "hs_recurring_billing_period": "term",
    "hs_recurring_billing_start_date": "billing start date",
    "recurringbillingfrequency": "billing frequency",
}


def property_label(prop: str) -> str:
    label = PROPERTY_LABELS.get(prop)
    return f"{label} ({prop})" if label else prop


# --- valid Unicode ------------------------------------------------------------------------------

# A lone surrogate: a UTF-16 half without its other half. In a Python str every code point in
# this range is lone (json.loads joins an escaped pair into the character it encodes).
_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(value: Any) -> Any:
    """A raw HubSpot JSON value (a page, a record, …) with text every later step can take:
    each lone surrogate becomes U+FFFD, each NUL character is removed. Dicts (keys too) and
    lists are walked; numbers, booleans and None come back as they are.

    Why: JSON can carry half a character (`"\\ud83d"`, what a tool that cut an emoji in half
    sends), and Python then holds a str that no UTF-8 encoder takes: PostgreSQL's jsonb refuses
    it in the staging table and psycopg cannot send it, so one such deal name would stop a whole
    step on every retry. PostgreSQL's text and jsonb cannot hold NUL at all.

    The choice: a lone surrogate becomes U+FFFD, the replacement character, as every UTF-8
    decoder does with a broken sequence: the value keeps a visible mark where a character was
    lost instead of silently closing up (a surrogate pair split over two code points becomes the
    character it encodes). NUL is removed instead: it is never text (C strings end at it),
    shows as nothing anywhere, and a mark would change values such as SKUs where the sender saw
    nothing. Everything else is stored as received; rendering for people is `display.py`'s job.
    """
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, dict):
        return {valid_unicode(key): valid_unicode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [valid_unicode(item) for item in value]
    return value


def _valid_text(text: str) -> str:
    if not text.isascii() and _SURROGATE.search(text):  # rare: only then re-encode
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", "") if "\x00" in text else text


# --- text cleaning ------------------------------------------------------------------------------

NAME_MAX = 255  # names, e-mails, phones, address parts: one line each, cut with "…" beyond
TEXT_MAX = 10_000  # descriptions and memos, likewise
QUOTE_MAX = 40  # a value quoted in an error message
# Identity text (R-PROD-1 SKU, the invoice number) is never cut: a cut SKU can become another
# product's (two SKUs differing after character 300 were booked as one item). Beyond this it is
# refused. 255 takes any real SKU, barcode or invoice number; it stays far inside the size a
# unique index entry may have (items_org_sku_key: about 2,700 bytes, 255 characters are at
# most 1,020), and every SKU the ledger held before this rule was at most 255 already.
IDENTITY_MAX = 255
# What a refused identity would have been mistaken for: property → (its name, whose it is).
_IDENTITIES = {"hs_sku": ("SKU", "product"), "hs_number": ("invoice number", "invoice")}

# C0/C1 control characters except tab/newline/CR (handled separately); PostgreSQL cannot store
# NUL, and none of them means anything in a name or description.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS = re.compile("[\t\n\r\u2028\u2029]+")
_CRLF = re.compile("\r\n?|[\u2028\u2029]")


def _cap(text: str, limit: int | None) -> str:
    # A cut display value ends in an ellipsis so nobody mistakes it for the whole.
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _clean(text: str, breaks: re.Pattern[str], between: str) -> str:
    # Lone surrogates become U+FFFD here too (valid_unicode normally did it already): psycopg
    # cannot send them, and the result must be storable whoever called.
    return _CONTROL.sub("", breaks.sub(between, _valid_text(text))).strip()


def clean_line(value: str | None, limit: int | None = NAME_MAX) -> str | None:
    """A one-line display value: line breaks and tabs become a space, control characters go,
    lone surrogates become U+FFFD, trimmed; longer than `limit` characters (None: no limit), it
    is cut and ends in "…". Blank → None. Identity text goes through `identity` instead."""
    if value is None:
        return None
    text = _clean(value, _BREAKS, " ")
    return _cap(text, limit) if text else None


def clean_text(value: str | None, limit: int | None = TEXT_MAX) -> str | None:
    """A multi-line display value (descriptions): keeps newlines and tabs, drops other control
    characters, lone surrogates become U+FFFD, trimmed; cut with "…" beyond `limit`. Blank →
    None."""
    if value is None:
        return None
    text = _clean(value, _CRLF, "\n")
    return _cap(text, limit) if text else None


def quote(value: str) -> str:
    """A value as shown inside a one-line message."""
    return f'"{clean_line(value, QUOTE_MAX) or ""}"'


def _too_long(text: str, prop: str) -> str:
    """Why identity text is refused, in an accountant's words."""
    name, owner = _IDENTITIES.get(prop, (prop, "record"))
    return (f"is {len(text):,} characters long, where the ledger takes at most {IDENTITY_MAX}; "
            f"it is never shortened, because a shortened {name} could be another {owner}'s")


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


# --- typed properties ---------------------------------------------------------------------------

_V = TypeVar("_V")


class _Read(Generic[_V]):
    """A HubSpot property the map layer reads, as a typed attribute of the record
    (`sku = Text("hs_sku")`): the record's reader of that kind (`text`, `decimal`, `date`)
    parses it when read, so a bad value raises BadValue naming the record and the property."""

    reader: ClassVar[str]

    def __init__(self, prop: str) -> None:
        self.prop = prop

    @overload
    def __get__(self, record: None, owner: type) -> Self: ...

    @overload
    def __get__(self, record: HubSpotRecord, owner: type) -> _V | None: ...

    def __get__(self, record: HubSpotRecord | None, owner: type) -> Self | _V | None:
        if record is None:
            return self
        value: _V | None = getattr(record, self.reader)(self.prop)
        return value


class Text(_Read[str]):
    """Trimmed text; None when missing or blank."""

    reader = "text"


class Number(_Read[Decimal]):
    """A plain decimal number (never a float)."""

    reader = "decimal"


class Date(_Read[dt.date]):
    """A date or datetime, as its UTC calendar date."""

    reader = "date"


# --- records ------------------------------------------------------------------------------------


class HubSpotRecord(BaseModel):
    """One CRM record as HubSpot's v3 objects API returns it (camelCase JSON)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True,
                              validate_by_alias=True, frozen=True, extra="ignore",
                              ignored_types=(_Read,))

    REMOTE_TYPE: ClassVar[RemoteType]
    LABEL: ClassVar[str] = "Record"
    NAME_PROPERTY: ClassVar[str | None] = None
    # What the map layer reads, which the extract requests: the name, every typed property
    # (Text, Number, Date) and ALSO_READ, the properties it reads without one (set per class).
    PROPERTIES: ClassVar[tuple[str, ...]] = ()
    ALSO_READ: ClassVar[tuple[str, ...]] = ()

    id: str
    properties: dict[str, str | None] = {}
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    archived: bool = False
    archived_at: dt.datetime | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        typed = [attr.prop for klass in reversed(cls.__mro__) for attr in vars(klass).values()
                 if isinstance(attr, _Read)]
        named = [cls.NAME_PROPERTY] if cls.NAME_PROPERTY else []
        cls.PROPERTIES = tuple(dict.fromkeys([*named, *typed, *cls.ALSO_READ]))

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

    @property
    def name(self) -> str | None:
        """The record's name as people know it (its NAME_PROPERTY), trimmed."""
        return self.text(self.NAME_PROPERTY) if self.NAME_PROPERTY else None

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

    @overload
    def identity(self, prop: str, fallback: str) -> str: ...

    @overload
    def identity(self, prop: str, fallback: None = None) -> str | None: ...

    def identity(self, prop: str, fallback: str | None = None) -> str | None:
        """Identity text of a ledger record (R-PROD-1 SKU, the invoice number): the property
        cleaned like a one-line value (control characters go, line breaks become a space,
        trimmed), else `fallback`, else None; never cut. Longer than IDENTITY_MAX characters,
        it is refused with BadValue (MappingError for a too-long fallback), naming this record:
        the record is not imported and goes to the errors log (R-SYNC-6)."""
        value = clean_line(self.properties.get(prop), None)
        if value is not None:
            if len(value) > IDENTITY_MAX:
                raise BadValue(self, prop, value, _too_long(value, prop),
                               f"shorten the {_IDENTITIES.get(prop, (prop,))[0]} in HubSpot")
            return value
        if fallback is not None and len(fallback) > IDENTITY_MAX:
            raise MappingError(self.REMOTE_TYPE, self.id,
                               f"{self.subject}: {property_label(prop)} is missing, and the "
                               f"one made from the id, {quote(fallback)}, "
                               f"{_too_long(fallback, prop)}; set it in HubSpot")
        return fallback

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
    ALSO_READ = ("price",)

    sku = Text("hs_sku")
    description = Text("description")
    product_type = Text("hs_product_type")


class Company(HubSpotRecord):
    REMOTE_TYPE = RemoteType.COMPANY
    LABEL = "Company"
    NAME_PROPERTY = "name"
    # Plus the fields of company_to_customer.yaml (maps.hubspot_properties).

    domain = Text("domain")


class Deal(HubSpotRecord):
    REMOTE_TYPE = RemoteType.DEAL
    LABEL = "Deal"
    NAME_PROPERTY = "dealname"
    ALSO_READ = ("pipeline", "description")

    stage = Text("dealstage")
    close_date = Date("closedate")
    currency_code = Text("deal_currency_code")

    @property
    def description(self) -> str | None:
        return self.properties.get("description")  # cleaned (keeping newlines) by the mapper


class LineItem(HubSpotRecord):
    REMOTE_TYPE = RemoteType.LINE_ITEM
    LABEL = "Line item"
    NAME_PROPERTY = "name"
    ALSO_READ = ("amount",
                 # a recurring term (issue 14, `--recognition hubspot-terms`)
                 "recurringbillingfrequency", "hs_recurring_billing_period",
                 "hs_recurring_billing_start_date")

    description = Text("description")
    product_id = Text("hs_product_id")
    sku = Text("hs_sku")
    quantity = Number("quantity")
    unit_price = Number("price")
    # `discount` is a per-unit amount (hubspot-api.md, "Addendum: line-item discounts").
    unit_discount = Number("discount")
    # `hs_discount_percentage`, in percent (20 = 20 %), applied to the line total.
    discount_percentage = Number("hs_discount_percentage")
    currency_code = Text("hs_line_item_currency_code")


class Invoice(HubSpotRecord):
    REMOTE_TYPE = RemoteType.INVOICE
    LABEL = "Invoice"
    NAME_PROPERTY = "hs_number"
    ALSO_READ = ("hs_invoice_status",)

    number = Text("hs_number")
    invoice_date = Date("hs_invoice_date")
    due_date = Date("hs_due_date")
    currency_code = Text("hs_currency")
