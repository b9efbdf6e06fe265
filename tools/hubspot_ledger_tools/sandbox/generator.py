"""Deterministic portal data: the same seed and scale always give the same records and ids.

Each type starts with hand-written archetypes — the cases every mapping rule needs (a deal with
several companies, one with only zero-price lines, a line of an archived product, an invoice
missing its due date, closedates on both sides of a 2025-01-01 cutoff, …) — so even `tiny`
exercises them all; the rest is drawn at random from realistic distributions.
History is anchored at fixed dates, not at "now", so that the data never depends on the clock.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from hubspot_ledger_tools.sandbox import names
from hubspot_ledger_tools.sandbox.associations import link
from hubspot_ledger_tools.sandbox.config import Scale
from hubspot_ledger_tools.sandbox.pricing import line_amounts, money
from hubspot_ledger_tools.sandbox.records import PortalData, Record, Value
from hubspot_ledger_tools.sandbox.schema import DEAL_STAGES, RENEWAL_STAGES
from hubspot_ledger_tools.sandbox.timefmt import ms_of

DAY = 86_400_000
END = ms_of(2026, 10, 1)  # nothing generated was modified after this
LAST_CLOSEDATE = ms_of(2026, 12, 31, 17)
ID_BASE = {"products": 1_400_000_000, "companies": 5_100_000_000, "contacts": 21_000,
           "deals": 9_800_000_000, "line_items": 14_600_000_000, "invoices": 310_000_000_000}
OPEN_STAGES = tuple(s for s, _, _ in DEAL_STAGES if s not in ("closedwon", "closedlost"))
# Issue 14 (`beyond`): a deal of the renewals pipeline, by the stage its plan has.
RENEWAL_STAGE_OF = {"closedwon": RENEWAL_STAGES[1][0], "closedlost": RENEWAL_STAGES[2][0]}
INVOICE_STATUSES = ("paid", "open", "draft", "voided")
INVOICE_STATUS_WEIGHTS = (45, 30, 15, 10)


@dataclass
class DealPlan:
    """An archetype deal. company: index of its primary company (None = no company)."""

    stage: str
    closedate: int
    company: int | None = 0
    others: tuple[int, ...] = ()  # indexes of further, non-primary companies
    lines: str = "normal"  # normal|none|zero_only|with_zero|odd_products|one
    currency: str | None = None


@dataclass
class InvoicePlan:
    status: str
    invoice_date: int | None
    due_days: int | None = 30
    company: int | None = 0
    lines: str = "normal"  # normal|no_product|with_zero|discounts
    deal: int | None = None  # index of an associated deal


DEAL_PLANS = (
    DealPlan("closedwon", ms_of(2025, 3, 14, 15, 30), company=0, lines="normal"),
    DealPlan("closedwon", ms_of(2025, 6, 30, 12), company=1, others=(2, 0), lines="discounts"),
    DealPlan("closedwon", ms_of(2025, 9, 2, 9, 15), company=None, lines="one"),
    DealPlan("closedwon", ms_of(2025, 4, 1, 10), company=2, lines="none"),
    DealPlan("closedwon", ms_of(2025, 5, 5, 16), company=0, lines="zero_only"),
    DealPlan("closedwon", ms_of(2026, 1, 15, 11), company=1, lines="with_zero", currency="EUR"),
    DealPlan("closedwon", ms_of(2025, 11, 20, 14), company=0, lines="odd_products"),
    DealPlan("closedwon", ms_of(2024, 12, 31, 23, 59, 59, 999), company=2, lines="one"),
    DealPlan("closedwon", ms_of(2025, 1, 1), company=0, lines="percent_example"),
    DealPlan("closedwon", ms_of(2023, 6, 15, 13), company=1, lines="normal"),
    DealPlan("closedlost", ms_of(2025, 8, 8, 8), company=3, lines="one"),
    DealPlan("appointmentscheduled", ms_of(2026, 12, 15, 17), company=None, lines="one"),
    DealPlan("qualifiedtobuy", ms_of(2026, 11, 30, 17), company=3, lines="normal"),
    DealPlan("presentationscheduled", ms_of(2026, 10, 20, 17), company=3, lines="none"),
    DealPlan("decisionmakerboughtin", ms_of(2026, 10, 2, 17), company=0, lines="one"),
    DealPlan("contractsent", ms_of(2026, 9, 29, 17), company=1, lines="normal"),
)

INVOICE_PLANS = (
    InvoicePlan("paid", ms_of(2025, 2, 10, 9), company=0, lines="discounts", deal=0),
    InvoicePlan("open", ms_of(2025, 3, 3, 9), due_days=None, company=1),
    InvoicePlan("open", ms_of(2025, 8, 19, 9), company=0, lines="no_product"),
    InvoicePlan("draft", ms_of(2024, 12, 31, 23, 59, 59, 999), company=2, lines="with_zero"),
    InvoicePlan("paid", None, company=3),
)


@dataclass
class Generated:
    """The portal's data plus handles the generator's later steps need."""

    data: PortalData = field(default_factory=PortalData)
    products: list[Record] = field(default_factory=list)
    archived_products: list[Record] = field(default_factory=list)
    companies: list[Record] = field(default_factory=list)
    contacts: list[Record] = field(default_factory=list)
    deals: list[Record] = field(default_factory=list)
    won_deals: list[Record] = field(default_factory=list)


def generate(seed: int, scale: Scale, currency: str = "USD",
             other_currencies: Sequence[str] = ("EUR", "GBP"), *, beyond: bool = False
             ) -> PortalData:
    # Hundreds of thousands of small acyclic objects: the cycle collector would only rescan
    # them over and over (about a third of the time of a large portal).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Generator(seed, scale, currency, tuple(other_currencies), beyond).run()
    finally:
        if collecting:
            gc.enable()


class _Generator:
    def __init__(self, seed: int, scale: Scale, currency: str,
                 other_currencies: tuple[str, ...], beyond: bool = False) -> None:
        self.rng = random.Random(seed)
        # Issue 14's data; every random draw it takes is behind this flag, so that the data
        # without it stays what it was.
        self.beyond = beyond
        self.scale = scale
        self.currency = currency
        self.other_currencies = other_currencies or ("EUR",)
        self.out = Generated()
        self.next_ids = {t: base + self.rng.randrange(1, 90_000)
                         for t, base in ID_BASE.items()}

    # -- plumbing -------------------------------------------------------------------------

    def new(self, type_name: str, props: dict[str, Value], created: int,
            updated: int | None = None) -> Record:
        record_id = self.next_ids[type_name]
        self.next_ids[type_name] += self.rng.randint(1, 37)
        modified = updated if updated is not None else \
            min(END, created + self.rng.randrange(0, 40 * DAY))
        record = Record(record_id, props, created, max(created, modified))
        self.out.data.tables[type_name].add(record)
        return record

    def spread(self, index: int, count: int, start: int, end: int) -> int:
        """The creation time of the index-th of `count` records made between start and end."""
        step = (end - start) // max(count, 1)
        return start + step * index + self.rng.randrange(0, max(step, 1))

    def chance(self, percent: float) -> bool:
        return self.rng.random() * 100 < percent

    def run(self) -> PortalData:
        self.products()
        self.companies()
        self.deals()
        self.invoices()
        return self.out.data

    # -- products ---------------------------------------------------------------------------

    def products(self) -> None:
        count = self.scale.products
        fixed: list[dict[str, Value]] = [
            {"name": "Implementation Service", "hs_sku": "SKU-SVC-001",
             "hs_product_type": "service", "price": "1500.00",
             "description": "Onboarding and configuration, per project",
             "hs_cost_of_goods_sold": "600.00"},
            {"name": "Sensor Kit", "hs_sku": "SKU-INV-002", "hs_product_type": "inventory",
             "price": "49.99", "description": "Hardware kit, boxed"},
            {"name": "Annual License", "hs_product_type": "non_inventory", "price": "120.00",
             "hs_recurring_billing_period": "P12M"},
            {"name": "Consulting Hour", "hs_sku": "SKU-CONS-004", "price": "234.56",
             "description": "Senior consultant, hourly"},
            {"name": "Legacy Support Plan", "hs_product_type": "service", "price": "300.00",
             "description": "Discontinued"},
        ]
        for index in range(count):
            created = self.spread(index, count, ms_of(2022, 6, 1), ms_of(2025, 6, 1))
            props = fixed[index] if index < len(fixed) else self.random_product(index)
            record = self.new("products", props, created)
            # The fifth archetype, and about 2% of the rest, are archived (still referenced).
            if index == 4 or (index >= len(fixed) and self.chance(2)):
                record.archived = True
                record.archived_at = record.updated
                self.out.archived_products.append(record)
            else:
                self.out.products.append(record)

    def random_product(self, index: int) -> dict[str, Value]:
        rng = self.rng
        props: dict[str, Value] = {
            "name": f"{rng.choice(names.PRODUCT_ADJECTIVES)} {rng.choice(names.PRODUCT_NOUNS)}",
            "price": self.random_price()}
        if self.chance(80):
            props["hs_sku"] = f"SKU-{index:05d}"
        kind = rng.choices(("service", "inventory", "non_inventory", None), (35, 25, 25, 15))[0]
        if kind:
            props["hs_product_type"] = kind
        if self.chance(70):
            props["description"] = f"{props['name']} — catalogue item {index}"
        if self.chance(50):
            cost = Decimal(str(props["price"])) * Decimal(rng.choice(("0.3", "0.4", "0.55")))
            props["hs_cost_of_goods_sold"] = money(cost, self.currency)  # the portal's
        if kind == "service" and self.chance(30):
            props["hs_recurring_billing_period"] = rng.choice(("P12M", "P6M", "P24M"))
        return props

    def random_price(self) -> str:
        rng = self.rng
        band = rng.random()
        if band < 0.15:
            return f"{rng.randint(5, 99)}.99"
        if band < 0.65:
            return f"{rng.randint(1, 40) * 50}.00"
        if band < 0.85:
            return f"{rng.randint(20, 250) * 100}.00"
        if band < 0.95:
            return f"{rng.randint(100, 9999)}.{rng.randint(0, 99):02d}"
        # HubSpot keeps up to six decimals on unit prices.
        return f"{rng.randint(0, 40)}.{rng.randint(0, 999999):06d}"

    # -- companies and their contacts -------------------------------------------------------

    def companies(self) -> None:
        count = self.scale.companies
        fixed: list[dict[str, Value]] = [
            {"name": "Acme Corporation", "domain": "acme.example.com",
             "phone": "+1 617-555-0100", "website": "https://www.acme.example.com",
             "address": "1 Main Street", "address2": "Suite 200", "city": "Boston",
             "state": "MA", "zip": "02110", "country": "United States",
             "owneremail": "ava.sales@sandbox-portal.example.com", "industry": "COMPUTER_SOFTWARE"},
            {"name": "Müller & Söhne GmbH", "domain": "mueller-soehne.example.de",
             "phone": "+49 30 1234567", "website": "https://mueller-soehne.example.de",
             "address": "Friedrichstraße 12", "city": "Berlin", "state": "Berlin",
             "zip": "10117", "country": "Germany"},
            {"name": "Globex", "domain": "globex.example.com"},
            {"name": "Initech Ltd", "domain": "initech.example.co.uk",
             "address": "4 High Street", "city": "London", "zip": "EC1A 1BB",
             "country": "United Kingdom", "owneremail": "ben.accounts@sandbox-portal.example.com"},
        ]
        for index in range(count):
            created = self.spread(index, count, ms_of(2022, 6, 1), ms_of(2026, 3, 1))
            props = fixed[index] if index < len(fixed) else self.random_company()
            company = self.new("companies", props, created)
            if index >= len(fixed) and self.chance(0.5):
                company.archived, company.archived_at = True, company.updated
            self.out.companies.append(company)
            self.contact_of(company)

    def random_company(self) -> dict[str, Value]:
        rng = self.rng
        first, second = rng.choice(names.COMPANY_FIRST), rng.choice(names.COMPANY_SECOND)
        suffix = rng.choice(names.COMPANY_SUFFIX)
        domain = f"{first}{second}".lower() + rng.choice(names.TLDS)
        city, state, zip_code, country = rng.choice(names.LOCATIONS)
        props: dict[str, Value] = {"name": f"{first} {second} {suffix}".strip()}
        optional: list[tuple[float, str, str]] = [
            (90, "domain", domain),
            (75, "phone", f"+1 {rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"),
            (80, "website", f"https://www.{domain}"),
            (70, "address", f"{rng.randint(1, 999)} {rng.choice(names.STREETS)}"),
            (20, "address2", rng.choice(names.ADDRESS2)),
            (75, "city", city), (65, "state", state), (70, "zip", zip_code),
            (80, "country", country),
            (50, "owneremail", f"{rng.choice(names.OWNERS)}@sandbox-portal.example.com"),
        ]
        for percent, key, value in optional:
            if value and self.chance(percent):
                props[key] = value
        return props

    def contact_of(self, company: Record) -> None:
        rng = self.rng
        first, last = rng.choice(names.FIRST_NAMES), rng.choice(names.LAST_NAMES)
        domain = str(company.props.get("domain") or "example.com")
        email = f"{first}.{last}@{domain}".lower().replace("'", "")
        contact = self.new("contacts", {"firstname": first, "lastname": last, "email": email,
                                        "company": str(company.props.get("name", ""))},
                           company.created + rng.randrange(DAY))
        self.out.contacts.append(contact)
        link(self.out.data, "contacts", contact.id, "companies", company.id, primary=True)

    # -- deals and their line items -----------------------------------------------------------

    def deals(self) -> None:
        count = self.scale.deals
        start, end = ms_of(2022, 12, 20), ms_of(2026, 8, 1)
        for index in range(count):
            created = self.spread(index, count, start, end)
            plan = DEAL_PLANS[index] if index < len(DEAL_PLANS) else self.random_plan(created)
            self.deal(index, plan, created)

    def random_plan(self, created: int) -> DealPlan:
        rng = self.rng
        # A bit over half closed-won: `large` must hold at least 20,000 of its 40,000.
        stage = rng.choices(("closedwon", "closedlost", *OPEN_STAGES),
                            (52, 15, *(6.6,) * len(OPEN_STAGES)))[0]
        if stage in ("closedwon", "closedlost"):
            closedate = min(created + rng.randrange(14 * DAY, 240 * DAY), END - DAY)
        else:
            closedate = min(created + rng.randrange(14 * DAY, 300 * DAY), LAST_CLOSEDATE)
        companies = len(self.out.companies)
        roll = rng.random()
        company: int | None = None
        others: tuple[int, ...] = ()
        if roll < 0.70:
            company = rng.randrange(companies)
        elif roll < 0.82:
            company = rng.randrange(companies)
            others = tuple(rng.randrange(companies) for _ in range(rng.randint(1, 2)))
        lines = rng.choices(("normal", "none", "zero_only"), (88, 8, 4))[0]
        currency = rng.choice(self.other_currencies) if self.chance(8) else None
        return DealPlan(stage, closedate, company, others, lines, currency)

    def deal(self, index: int, plan: DealPlan, created: int) -> None:
        rng = self.rng
        created = min(created, plan.closedate - 3 * DAY)
        currency = plan.currency or self.currency
        companies = self.out.companies
        primary = companies[plan.company % len(companies)] if plan.company is not None else None
        label = str(primary.props.get("name")) if primary else "Direct customer"
        props: dict[str, Value] = {
            "dealname": f"{label} — {rng.choice(names.DEAL_WORDS)} #{index + 1}",
            "pipeline": "default", "dealstage": plan.stage, "closedate": plan.closedate,
            "deal_currency_code": currency,
            "hs_is_closed_won": "true" if plan.stage == "closedwon" else "false",
            "hs_is_closed": "true" if plan.stage in ("closedwon", "closedlost") else "false",
        }
        if self.beyond and index >= len(DEAL_PLANS) and self.chance(20):
            # A renewal: the renewals pipeline's stage matching the plan's.
            stage = RENEWAL_STAGE_OF.get(plan.stage, RENEWAL_STAGES[0][0])
            props.update(pipeline="renewals", dealstage=stage,
                         hs_is_closed_won=str(stage == RENEWAL_STAGES[1][0]).lower())
        if self.chance(70):
            props["description"] = f"{rng.choice(names.DEAL_WORDS)} agreed with {label}."
        if self.chance(80):
            props["dealtype"] = rng.choice(("newbusiness", "existingbusiness"))
        if self.chance(60):
            props["hubspot_owner_id"] = str(rng.randint(10_000_000, 10_000_004))
        touched = min(END, max(created, min(plan.closedate, END)) + rng.randrange(0, 30 * DAY))
        deal = self.new("deals", props, created, touched)
        data = self.out.data
        if primary is not None:
            link(data, "deals", deal.id, "companies", primary.id, primary=True)
            for other in plan.others:
                company = companies[other % len(companies)]
                if company.id != primary.id:
                    link(data, "deals", deal.id, "companies", company.id)
        total = Decimal(0)
        for line in self.deal_lines(plan.lines, currency, created):
            link(data, "deals", deal.id, "line_items", line.id)
            total += Decimal(str(line.props["amount"]))
        if plan.lines != "none":
            props["amount"] = money(total, currency)
        elif self.chance(70):
            props["amount"] = money(Decimal(rng.randint(5, 400) * 100), currency)
        if "amount" in props and currency == self.currency:
            props["amount_in_home_currency"] = props["amount"]
        if index >= len(DEAL_PLANS) and self.chance(0.5):
            deal.archived, deal.archived_at = True, deal.updated
        self.out.deals.append(deal)
        if plan.stage == "closedwon" and not deal.archived:
            self.out.won_deals.append(deal)

    def deal_lines(self, kind: str, currency: str, created: int) -> list[Record]:
        products = self.out.products
        make = self.line
        if kind == "none":
            return []
        if kind == "one":
            return [make(self.rng.choice(products), currency, created)]
        if kind == "zero_only":
            return [make(self.rng.choice(products), currency, created, price="0")
                    for _ in range(self.rng.randint(1, 2))]
        if kind == "with_zero":
            return [make(products[0], currency, created),
                    make(products[1 % len(products)], currency, created, price="0")]
        if kind == "odd_products":
            archived = self.out.archived_products[0]
            return [make(archived, currency, created),
                    make(None, currency, created, price="450.00", quantity="1")]
        if kind == "discounts":
            return [make(products[0], currency, created, quantity="2.5", discount="100.00"),
                    make(products[1 % len(products)], currency, created, quantity="3",
                         percentage="15")]
        if kind == "percent_example":
            # The addendum's example: 10 × 234.56 at 20 % → net 1,876.48 (not 1,876.50).
            return [make(products[3 % len(products)], currency, created, quantity="10",
                         percentage="20")]
        count = self.rng.choices((1, 2, 3, 4), (55, 27, 12, 6))[0]
        return [self.random_line(currency, created) for _ in range(count)]

    def random_line(self, currency: str, created: int) -> Record:
        rng = self.rng
        roll = rng.random()
        product: Record | None = None  # a custom line, not from the product library
        if roll < 0.88:
            product = rng.choice(self.out.products)
        elif roll < 0.90 and self.out.archived_products:
            product = rng.choice(self.out.archived_products)
        qroll = rng.random()
        if qroll < 0.75:
            quantity = str(rng.randint(1, 5))
        elif qroll < 0.85:
            quantity = str(rng.randint(6, 50))
        else:
            quantity = rng.choice(names.FRACTIONS)
        price: str | None = None
        if self.chance(3):
            price = "0"
        elif product is None or self.chance(20):
            price = self.random_price()
        percentage = discount = None
        droll = rng.random()
        if droll < 0.14:
            percentage = rng.choice(names.PERCENTAGES)
        elif droll < 0.23:
            base = Decimal(price or str(product.props["price"] if product else "0"))
            off = money(base * Decimal(rng.choice(("0.05", "0.1", "0.2"))), currency)
            discount = off if Decimal(off) else None  # a unit discount that rounds to none
        return self.line(product, currency, created, price=price, quantity=quantity,
                         discount=discount, percentage=percentage)

    def line(self, product: Record | None, currency: str, created: int, *,
             price: str | None = None, quantity: str | None = None,
             discount: str | None = None, percentage: str | None = None) -> Record:
        rng = self.rng
        if product is not None:
            props: dict[str, Value] = {"name": product.props["name"],
                                       "hs_product_id": str(product.id)}
            for key in ("hs_sku", "description"):
                if key in product.props:
                    props[key] = product.props[key]
            unit = price if price is not None else str(product.props["price"])
            if product.props.get("hs_recurring_billing_period") and self.chance(50):
                period = str(product.props["hs_recurring_billing_period"])
                props.update(recurringbillingfrequency="monthly",
                             hs_recurring_billing_period=period,
                             hs_term_in_months=period[1:-1])
                if self.beyond:  # billing starts on the first of the month after the sale
                    day = dt.datetime.fromtimestamp(created / 1000, tz=dt.UTC).date()
                    start = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
                    props["hs_recurring_billing_start_date"] = start.isoformat()
        else:
            props = {"name": rng.choice(names.CUSTOM_LINES)}
            unit = price if price is not None else self.random_price()
        qty = quantity or str(rng.randint(1, 3))
        props.update(quantity=qty, price=unit, hs_line_item_currency_code=currency)
        if discount:
            props["discount"] = discount
        if percentage:
            props["hs_discount_percentage"] = percentage
        props.update(line_amounts(qty, unit, discount, percentage, currency))
        return self.new("line_items", props, created + rng.randrange(0, 3_600_000),
                        min(END, created + rng.randrange(3_600_000, 20 * DAY)))

    # -- invoices -----------------------------------------------------------------------------

    def invoices(self) -> None:
        count = self.scale.invoices
        start, end = ms_of(2023, 1, 5), ms_of(2026, 9, 20)
        for index in range(count):
            created = self.spread(index, count, start, end)
            plan = INVOICE_PLANS[index] if index < len(INVOICE_PLANS) else \
                self.random_invoice_plan(created)
            self.invoice(index, plan, created)

    def random_invoice_plan(self, created: int) -> InvoicePlan:
        rng = self.rng
        status = rng.choices(INVOICE_STATUSES, INVOICE_STATUS_WEIGHTS)[0]
        date = None if self.chance(2) else created + rng.randrange(0, 2 * DAY)
        due = None if self.chance(3) else rng.choice((14, 30, 45, 60))
        company = rng.randrange(len(self.out.companies)) if self.chance(90) else None
        lines = rng.choices(("normal", "no_product", "with_zero", "discounts", "none"),
                            (70, 10, 8, 9, 3))[0]
        deal = rng.randrange(len(self.out.won_deals)) if self.out.won_deals and \
            self.chance(25) else None
        return InvoicePlan(status, date, due, company, lines, deal)

    def invoice(self, index: int, plan: InvoicePlan, created: int) -> None:
        rng = self.rng
        currency = rng.choice(self.other_currencies) if index >= len(INVOICE_PLANS) and \
            self.chance(8) else self.currency
        if plan.invoice_date is not None:  # drafted shortly before its date
            created = plan.invoice_date - rng.randrange(0, 2 * DAY)
        props: dict[str, Value] = {"hs_number": f"INV-{1001 + index}", "hs_currency": currency,
                                   "hs_invoice_status": plan.status,
                                   "hs_invoice_billable": "true"}
        if plan.invoice_date is not None:
            props["hs_invoice_date"] = plan.invoice_date
        if plan.due_days is not None:
            props["hs_due_date"] = (plan.invoice_date or created) + plan.due_days * DAY
        invoice = self.new("invoices", props, created)
        data = self.out.data
        lines = self.invoice_lines(plan.lines, currency, created)
        billed = gross = Decimal(0)
        for line in lines:
            link(data, "invoices", invoice.id, "line_items", line.id)
            billed += Decimal(str(line.props["amount"]))
            gross += Decimal(str(line.props["hs_pre_discount_amount"]))
        props.update(hs_amount_billed=money(billed, currency),
                     hs_subtotal=money(gross, currency),
                     hs_balance_due=money(Decimal(0) if plan.status == "paid" else billed,
                                          currency))
        if plan.company is not None:
            company = self.out.companies[plan.company % len(self.out.companies)]
            link(data, "invoices", invoice.id, "companies", company.id)
            contact = self.out.contacts[plan.company % len(self.out.contacts)]
            if self.chance(70):
                link(data, "invoices", invoice.id, "contacts", contact.id)
        if plan.deal is not None and self.out.won_deals:
            deal = self.out.won_deals[plan.deal % len(self.out.won_deals)]
            link(data, "invoices", invoice.id, "deals", deal.id)

    def invoice_lines(self, kind: str, currency: str, created: int) -> list[Record]:
        products = self.out.products
        make = self.line
        if kind == "none":
            return []
        if kind == "no_product":
            return [make(products[0], currency, created),
                    make(None, currency, created, price="75.00", quantity="2")]
        if kind == "with_zero":
            return [make(products[1 % len(products)], currency, created, price="0"),
                    make(products[2 % len(products)], currency, created)]
        if kind == "discounts":
            return [make(products[0], currency, created, percentage="10"),
                    make(products[3 % len(products)], currency, created, quantity="4",
                         discount="20.00")]
        count = self.rng.choices((1, 2, 3), (55, 30, 15))[0]
        return [make(self.rng.choice(products), currency, created) for _ in range(count)]
