"""The fewest HubSpot requests the data allows, and the rate-limit floor they imply.

Every record is read once, on the endpoint that moves the most records per request:

- products on a first run: `GET /crm/v3/objects/products` (list), 100 per page;
- whatever a filter finds: `POST /crm/v3/objects/{type}/search`, 200 per page (an empty answer
  still costs one request);
- records by id: `POST /crm/v3/objects/{type}/batch/read`, 100 per request;
- associations: `POST /crm/v4/associations/{from}/{to}/batch/read`, 1,000 inputs per request;
- the access token: `POST /oauth/v3/token`, once per 25 minutes of run (tokens live 30 minutes
  and are renewed 5 minutes early).

HubSpot's budgets for an OAuth app, per portal: 110 requests per rolling 10 s, search excluded;
search about 5 per second on its own (shared/reference/hubspot-api.md). A rolling window lets a
whole window's requests out at once, then the next window's 10 s later: N general requests need
(⌈N / 110⌉ − 1) × 10 s, N searches (⌈N / 5⌉ − 1) × 1 s. The budgets are separate, so a client
that overlaps them needs the longer of the two; and the last answer still takes its time to come
back: the floor adds the latency model's median of the slowest class the phase uses (nothing
when latency is off). A client that never overlaps the budgets needs the sum (shown beside it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from hubspot_ledger_tools.bench.census import ReadSet

LIST_PAGE = 100
SEARCH_PAGE = 200
BATCH_READ = 100
ASSOCIATION_BATCH = 1_000
GENERAL_LIMIT, GENERAL_WINDOW = 110, 10.0  # requests per rolling window, search excluded
SEARCH_LIMIT, SEARCH_WINDOW = 5, 1.0
GENERAL_RATE = GENERAL_LIMIT / GENERAL_WINDOW  # requests per second, search excluded
SEARCH_RATE = SEARCH_LIMIT / SEARCH_WINDOW  # search requests per second
TOKEN_RENEWAL_SECONDS = 25 * 60
TOKEN_ENDPOINT = "POST /oauth/v3/token"  # noqa: S105 - an endpoint, not a secret


@dataclass(frozen=True)
class Term:
    endpoint: str
    count: int
    why: str


def is_search(endpoint: str) -> bool:
    return endpoint.endswith("/search")


def is_auth(endpoint: str) -> bool:
    return "/oauth/" in endpoint or "/account-info/" in endpoint


def _pages(records: int, size: int, *, at_least_one: bool = False) -> int:
    return max(1 if at_least_one else 0, math.ceil(records / size))


def _n(value: int) -> str:
    return f"{value:,}"


def _search(kind: str, records: int, what: str) -> Term:
    return Term(f"POST /crm/v3/objects/{kind}/search", _pages(records, SEARCH_PAGE,
                                                               at_least_one=True),
                f"max(1, ⌈{_n(records)} {what} / {SEARCH_PAGE}⌉)")


def _batch_read(kind: str, records: int, what: str) -> list[Term]:
    if not records:
        return []
    return [Term(f"POST /crm/v3/objects/{kind}/batch/read", _pages(records, BATCH_READ),
                 f"⌈{_n(records)} {what} / {BATCH_READ}⌉")]


def _associations(source: str, target: str, inputs: int, what: str) -> list[Term]:
    if not inputs:
        return []
    return [Term(f"POST /crm/v4/associations/{source}/{target}/batch/read",
                 _pages(inputs, ASSOCIATION_BATCH),
                 f"⌈{_n(inputs)} {what} / {ASSOCIATION_BATCH:,}⌉")]


def _owned_lines(owner: str, owners: int, lines: int) -> list[Term]:
    """A deal's or invoice's line items: which ones (associations), then the lines by id."""
    return [*_associations(owner, "line_items", owners, owner),
            *_batch_read("line_items", lines, f"{owner[:-1]} lines")]


def _invoice_terms(reads: ReadSet) -> list[Term]:
    if not reads.sync_invoices:
        return []
    what = "invoices" if reads.full else "changed invoices"
    return [_search("invoices", reads.invoices, what),
            *_owned_lines("invoices", reads.invoices, reads.invoice_lines)]


def _product_terms(reads: ReadSet) -> list[Term]:
    if reads.full:
        return [Term("GET /crm/v3/objects/products", _pages(reads.products, LIST_PAGE,
                                                             at_least_one=True),
                     f"max(1, ⌈{_n(reads.products)} products / {LIST_PAGE}⌉)")]
    return [_search("products", reads.products, "changed products")]


def _changed_line_terms(reads: ReadSet) -> list[Term]:
    """Incremental: edited lines are found by one search, shared by invoices and deals; their
    owners through associations, the deals among them by id."""
    terms = [_search("line_items", reads.changed_lines, "changed lines"),
             *_associations("line_items", "deals", reads.changed_lines, "changed lines")]
    if reads.sync_invoices:
        terms += _associations("line_items", "invoices", reads.changed_lines, "changed lines")
    return [*terms, *_batch_read("deals", reads.deals_by_line, "deals of changed lines")]


def _deal_terms(reads: ReadSet) -> list[Term]:
    found_by_search = reads.deals - reads.deals_by_line
    what = "closed-won deals" if reads.full else "changed deals"
    terms = [_search("deals", found_by_search, what),
             *_associations("deals", "companies", reads.deals, "deals"),
             *_batch_read("companies", reads.companies, "primary companies"),
             *_owned_lines("deals", reads.deals, reads.deal_lines)]
    if not reads.full:
        terms.insert(0, _search("companies", 0, "changed companies"))
    return terms


def _token_terms(wall_seconds: float) -> list[Term]:
    renewals = int(wall_seconds // TOKEN_RENEWAL_SECONDS)
    if not renewals:
        return []
    return [Term(TOKEN_ENDPOINT, renewals, f"⌊{wall_seconds:,.0f} s / {TOKEN_RENEWAL_SECONDS} s⌋")]


def plan(reads: ReadSet, wall_seconds: float = 0.0) -> list[Term]:
    """The minimal requests of a phase, in the DAG's order (invoices, products, companies,
    deals), one term per endpoint and reason."""
    line_search = [] if reads.full else _changed_line_terms(reads)
    return [*_token_terms(wall_seconds), *_invoice_terms(reads), *_product_terms(reads),
            *line_search, *_deal_terms(reads)]


def by_endpoint(terms: list[Term]) -> dict[str, tuple[int, str]]:
    """endpoint → (count, formula): terms on one endpoint added up."""
    counts: dict[str, int] = defaultdict(int)
    whys: dict[str, list[str]] = defaultdict(list)
    for term in terms:
        counts[term.endpoint] += term.count
        whys[term.endpoint].append(term.why)
    return {e: (counts[e], " + ".join(whys[e])) for e in counts}


@dataclass(frozen=True)
class Floor:
    general: float  # seconds the 110 per rolling 10 s budget needs
    search: float  # seconds the 5/s search budget needs
    latency: float = 0.0  # the last answer's time (the slowest class's median)

    @property
    def seconds(self) -> float:
        """Separate budgets: the longer of the two, plus the last answer."""
        return max(self.general, self.search) + self.latency

    @property
    def sequential(self) -> float:
        return self.general + self.search + self.latency


def _windows(requests: int, limit: int, window: float) -> float:
    """Seconds a rolling window of `limit` per `window` needs to let `requests` out."""
    return max(0, math.ceil(requests / limit) - 1) * window if requests else 0.0


def floor(requests_by_endpoint: dict[str, int],
          latency_ms: dict[str, float] | None = None) -> Floor:
    """Seconds HubSpot's published windows (and the latency model, when on) need for these
    requests (token calls are not rate limited)."""
    from hubspot_ledger_tools.sandbox.latency import endpoint_class

    search = sum(n for e, n in requests_by_endpoint.items() if is_search(e))
    general = sum(n for e, n in requests_by_endpoint.items()
                  if not is_search(e) and not is_auth(e))
    latency = max((latency_ms.get(endpoint_class(e), 0.0) for e, n in
                   requests_by_endpoint.items() if n), default=0.0) / 1000 if latency_ms else 0.0
    return Floor(general=_windows(general, GENERAL_LIMIT, GENERAL_WINDOW),
                 search=_windows(search, SEARCH_LIMIT, SEARCH_WINDOW), latency=latency)
