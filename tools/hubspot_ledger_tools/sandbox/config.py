"""The sandbox's settings: the OAuth app, the default portal, limits, and the data scales."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hubspot_ledger_tools.sandbox.webhooks import DEFAULT_SUBSCRIPTIONS, check_subscription

DEFAULT_SCOPES = ("oauth", "crm.objects.deals.read", "crm.objects.companies.read",
                  "crm.objects.line_items.read", "crm.objects.products.read",
                  "crm.objects.invoices.read")


PIPELINE_SETS = ("default", "two")


@dataclass(frozen=True)
class Scale:
    """How many records a generated portal holds (line items follow from deals and invoices)."""

    deals: int
    products: int
    companies: int
    invoices: int

    @property
    def contacts(self) -> int:
        return self.companies


TINY = Scale(deals=16, products=5, companies=4, invoices=5)
PRESETS = {"tiny": None, "small": 75, "medium": 2_000, "large": 40_000}


def parse_scale(value: str | int) -> Scale:
    """A preset name or a number of deals (the other types in proportion, at least tiny's)."""
    text = str(value).strip().lower()
    if text == "tiny":
        return TINY
    deals = PRESETS.get(text)
    if deals is None:
        if not text.isdigit():
            raise ValueError(f"scale must be one of {', '.join(PRESETS)} or a number of deals,"
                             f" not {value!r}")
        deals = int(text)
    return Scale(deals=deals, products=max(TINY.products, round(deals * 0.075)),
                 companies=max(TINY.companies, round(deals * 0.25)),
                 invoices=max(TINY.invoices, round(deals * 0.5)))


@dataclass
class PortalSettings:
    """One HubSpot account (portal): what account details report, and how its data is made."""

    portal_id: int
    seed: int = 1
    scale: str = "small"
    currency: str = "USD"
    ui_domain: str = "app.hubspot.com"
    time_zone: str = "US/Eastern"
    utc_offset_ms: int = -5 * 3600 * 1000
    data_hosting_location: str = "na1"
    account_type: str = "STANDARD"
    additional_currencies: list[str] = field(default_factory=lambda: ["EUR", "GBP"])
    hub_domain: str = "sandbox-portal.example.com"
    # Issue 14's data: a renewals deal pipeline (its deals and its won stage) and billing start
    # dates on recurring lines. Off: the data is exactly what it was before.
    beyond: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SandboxConfig:
    """Everything configurable. `RUNTIME` names what the admin API may change while running."""

    seed: int = 1
    scale: str = "small"
    portal_id: int = 62515
    currency: str = "USD"
    ui_domain: str = "app.hubspot.com"
    client_id: str = "5d2a3d3e-0000-4000-8000-5a4db0c11e47"
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - a fake, printed at start
    redirect_uris: list[str] = field(
        default_factory=lambda: ["http://localhost:8080/hubspot/oauth-callback"])
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))
    optional_scopes: list[str] = field(default_factory=list)
    app_id: int = 3141592
    access_token_ttl: int = 1800  # seconds; HubSpot's 30 minutes
    code_ttl: int = 300  # seconds an authorization code stays exchangeable
    rate_limit: int = 110  # requests per window per portal (OAuth apps; search excluded)
    rate_window: float = 10.0  # seconds
    search_rate: int = 5  # search requests per second per portal
    search_lag: float = 0.0  # seconds a modified record stays invisible to search
    search_cap: int = 10_000  # results a search can page through
    association_page_size: int = 500  # `to` entries per input of a v4 batch read
    consent: str = "approve"  # what the simulated user answers on the consent page
    request_log_size: int = 200_000
    # HubSpot-like response times (latency.py): off in tests, on in `make bench`.
    latency: bool = False
    latency_seed: int | None = None  # None: the data seed
    # Deal pipelines served: "default" (HubSpot's sales pipeline only) or "two" (plus a
    # renewals pipeline with its own won stage; issue 14's won-stages setting).
    pipelines: str = "default"
    beyond: bool = False  # generate issue 14's data (PortalSettings.beyond); startup only
    # HubSpot's webhooks (webhooks.py): where the app's target URL is ("": none, nothing is
    # sent), what it is subscribed to, and how calls are batched and resent.
    webhook_url: str = ""
    webhook_subscriptions: list[str] = field(
        default_factory=lambda: list(DEFAULT_SUBSCRIPTIONS))
    webhook_batch_size: int = 100  # events per call (HubSpot's)
    webhook_batch_delay: float = 0.2  # seconds an event waits for others to share its call
    webhook_retries: int = 2  # resends of a failed call (HubSpot: 10, over hours)

    def effective_latency_seed(self) -> int:
        return self.seed if self.latency_seed is None else self.latency_seed

    RUNTIME = frozenset({
        "access_token_ttl", "code_ttl", "rate_limit", "rate_window", "search_rate",
        "search_lag", "search_cap", "association_page_size", "consent", "redirect_uris",
        "scopes", "optional_scopes", "request_log_size", "latency", "latency_seed",
        "pipelines", "webhook_url", "webhook_subscriptions", "webhook_batch_size",
        "webhook_batch_delay", "webhook_retries"})

    def portal_settings(self) -> PortalSettings:
        return PortalSettings(portal_id=self.portal_id, seed=self.seed, scale=self.scale,
                              currency=self.currency, ui_domain=self.ui_domain,
                              beyond=self.beyond)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("client_secret")
        return data

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with `changes` applied; ValueError names a key that cannot change or a bad
        value."""
        unknown = set(changes) - self.RUNTIME
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} at run time "
                             f"(changeable: {', '.join(sorted(self.RUNTIME))})")
        typed: dict[str, Any] = {}
        for key, value in changes.items():
            current = getattr(self, key)
            try:
                if key == "webhook_url":
                    typed[key] = "" if value is None else str(value).strip()
                elif key == "latency":
                    typed[key] = value if isinstance(value, bool) else \
                        str(value).strip().lower() in ("1", "true", "on", "yes")
                elif key == "latency_seed":
                    typed[key] = None if value is None else int(value)
                elif isinstance(current, list):
                    typed[key] = value.split() if isinstance(value, str) else \
                        [str(v) for v in value]
                elif isinstance(current, bool) or isinstance(current, str):
                    typed[key] = str(value)
                elif isinstance(current, int):
                    typed[key] = int(value)
                else:
                    typed[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"bad value for {key}: {value!r}") from None
        if typed.get("consent", "approve") not in ("approve", "deny"):
            raise ValueError("consent must be approve or deny")
        if typed.get("pipelines", "default") not in PIPELINE_SETS:
            raise ValueError(f"pipelines must be {' or '.join(PIPELINE_SETS)}")
        url = typed.get("webhook_url", "")
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be an http(s) URL or empty, not {url!r}")
        if "webhook_subscriptions" in typed:
            typed["webhook_subscriptions"] = [check_subscription(t)
                                              for t in typed["webhook_subscriptions"]]
        if typed.get("webhook_batch_size", 1) < 1 or typed.get("webhook_retries", 0) < 0 \
                or typed.get("webhook_batch_delay", 0.0) < 0:
            raise ValueError("webhook_batch_size must be 1 or more, webhook_retries and "
                             "webhook_batch_delay 0 or more")
        return dataclasses.replace(self, **typed)
