"""The CRM object types the sandbox serves: names, ids, properties, defaults and scopes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a property is compared in search and written in responses."""

    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"  # kept as epoch ms, written as ISO-8601
    DATE = "date"  # kept and written as YYYY-MM-DD
    ENUM = "enumeration"
    BOOL = "bool"


S, N, DT, D, E, B = Kind.STRING, Kind.NUMBER, Kind.DATETIME, Kind.DATE, Kind.ENUM, Kind.BOOL

# Every record has these; they live on the record itself, not in its property dict.
CREATEDATE = "createdate"
OBJECT_ID = "hs_object_id"


@dataclass(frozen=True)
class ObjectType:
    name: str  # the path name: "line_items"
    type_id: str  # HubSpot's object type id: "0-8"
    singular: str  # "line_item"
    label: str  # "LINE_ITEM", as HubSpot names the type in error messages
    inline_key: str  # key of this type inside a v3 object's inline `associations`
    scope: str  # the read scope a token needs
    properties: dict[str, Kind]
    defaults: tuple[str, ...]  # returned when a request names no properties
    searchable: tuple[str, ...]  # matched by a search `query`
    modified: str = "hs_lastmodifieddate"

    def kind(self, prop: str) -> Kind | None:
        return self.properties.get(prop)

    @property
    def always(self) -> tuple[str, str, str]:
        """Returned whatever properties were asked for."""
        return (CREATEDATE, self.modified, OBJECT_ID)


def _props(modified: str = "hs_lastmodifieddate", **kinds: Kind) -> dict[str, Kind]:
    return {CREATEDATE: DT, modified: DT, OBJECT_ID: N, **kinds}


PRODUCTS = ObjectType(
    "products", "0-7", "product", "PRODUCT", "products", "crm.objects.products.read",
    _props(name=S, description=S, price=N, hs_sku=S, hs_product_type=E,
           hs_cost_of_goods_sold=N, hs_recurring_billing_period=S, hs_url=S),
    ("name", "description", "price", CREATEDATE, "hs_lastmodifieddate", OBJECT_ID),
    ("name", "description", "price", "hs_sku"))

COMPANIES = ObjectType(
    "companies", "0-2", "company", "COMPANY", "companies", "crm.objects.companies.read",
    _props(name=S, domain=S, phone=S, website=S, address=S, address2=S, city=S, state=S,
           zip=S, country=S, owneremail=S, description=S, industry=E, hubspot_owner_id=E),
    ("name", "domain", CREATEDATE, "hs_lastmodifieddate", OBJECT_ID),
    ("website", "phone", "name", "domain"))

DEALS = ObjectType(
    "deals", "0-3", "deal", "DEAL", "deals", "crm.objects.deals.read",
    _props(dealname=S, amount=N, closedate=DT, dealstage=E, pipeline=E, description=S,
           deal_currency_code=E, dealtype=E, hs_is_closed_won=B, hs_is_closed=B,
           hubspot_owner_id=E, amount_in_home_currency=N),
    ("dealname", "amount", "closedate", "pipeline", "dealstage", CREATEDATE,
     "hs_lastmodifieddate", OBJECT_ID),
    ("dealname", "pipeline", "dealstage", "description", "dealtype"))

LINE_ITEMS = ObjectType(
    # HubSpot's inline association key for line items really has a space in it.
    "line_items", "0-8", "line_item", "LINE_ITEM", "line items", "crm.objects.line_items.read",
    _props(name=S, description=S, hs_sku=S, hs_product_id=N, quantity=N, price=N, amount=N,
           discount=N, hs_discount_percentage=N, hs_total_discount=N,
           hs_pre_discount_amount=N, hs_line_item_currency_code=E,
           recurringbillingfrequency=E, hs_recurring_billing_period=S,
           hs_recurring_billing_start_date=D, hs_term_in_months=N),
    ("quantity", "amount", "price", CREATEDATE, "hs_lastmodifieddate", OBJECT_ID),
    ("name", "description", "hs_sku"))

INVOICES = ObjectType(
    "invoices", "0-53", "invoice", "INVOICE", "invoices", "crm.objects.invoices.read",
    _props(hs_invoice_date=DT, hs_due_date=DT, hs_number=S, hs_currency=E,
           hs_invoice_status=E, hs_amount_billed=N, hs_balance_due=N, hs_subtotal=N,
           hs_purchase_order_number=S, hs_comments=S, hs_invoice_billable=B, hs_title=S),
    (CREATEDATE, "hs_lastmodifieddate", OBJECT_ID),
    ("hs_number", "hs_title"))

CONTACTS = ObjectType(
    "contacts", "0-1", "contact", "CONTACT", "contacts", "crm.objects.contacts.read",
    _props("lastmodifieddate", firstname=S, lastname=S, email=S, phone=S, company=S),
    ("firstname", "lastname", "email", CREATEDATE, "lastmodifieddate", OBJECT_ID),
    ("firstname", "lastname", "email", "phone", "company"), modified="lastmodifieddate")

OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t for t in (PRODUCTS, COMPANIES, DEALS, LINE_ITEMS, INVOICES, CONTACTS)}

_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.singular, _t.type_id, _t.label):
        _ALIASES[_alias.lower()] = _t.name
_ALIASES["lineitem"] = _ALIASES["lineitems"] = "line_items"


def resolve(name: str) -> ObjectType | None:
    """`deals`, `deal`, `DEAL` or `0-3` → the deals type; None for a type the sandbox lacks."""
    key = _ALIASES.get(name.strip().lower())
    return OBJECT_TYPES[key] if key else None


DEAL_STAGES: tuple[tuple[str, str, str], ...] = (
    # (internal id, label, probability) of HubSpot's default sales pipeline
    ("appointmentscheduled", "Appointment Scheduled", "0.2"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4"),
    ("presentationscheduled", "Presentation Scheduled", "0.6"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
    ("contractsent", "Contract Sent", "0.9"),
    ("closedwon", "Closed Won", "1.0"),
    ("closedlost", "Closed Lost", "0.0"),
)

RENEWAL_STAGES: tuple[tuple[str, str, str], ...] = (
    # (id, label, probability) of the renewals pipeline served with `pipelines=two`: custom
    # pipelines' stages have numeric ids in HubSpot; its won stage is closed with 1.0.
    ("71900001", "Renewal due", "0.5"),
    ("71900002", "Renewed", "1.0"),
    ("71900003", "Not renewed", "0.0"),
)
RENEWAL_CLOSED = ("71900002", "71900003")
