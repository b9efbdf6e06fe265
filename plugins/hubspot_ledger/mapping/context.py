"""What the map layer knows besides the HubSpot records: the integration's settings and portal."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubspot_ledger.errors import ReconnectRequired, SetupIncomplete
from hubspot_ledger.extract.models import CLOSED_WON
from hubspot_ledger.load.records import Integration, IntegrationSettings

DEFAULT_UI_DOMAIN = "app.hubspot.com"
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?")

# Settings ids the map layer copies into drafts, and how an accountant calls them.
SETTING_LABELS = {
    "income_account_id": "income account",
    "expense_account_id": "expense account",
    "deferred_revenue_account_id": "deferred-revenue account",
    "company_id": "accounting company",
}


@dataclass(frozen=True, slots=True)
class MappingContext:
    """One integration's settings and portal, as the mappers of a run need them.

    `currency` is the portal's company currency (R-AUTH-4), used when a deal or invoice names
    none. `ui_domain` is the portal's `uiDomain` (EU portals are not on app.hubspot.com; DESIGN
    "deep link host"); given with or without a scheme.
    """

    settings: IntegrationSettings
    portal_id: str
    currency: str | None = None
    ui_domain: str | None = None
    # The deal stages that count as won in this run (extract.closed_won.won_stages): R-DEAL-3's
    # `closedwon` unless the won-stages setting (issue 14) says otherwise.
    won_stages: frozenset[str] = frozenset({CLOSED_WON})

    def __post_init__(self) -> None:
        object.__setattr__(self, "portal_id", str(self.portal_id).strip())
        object.__setattr__(self, "ui_domain", normalize_ui_domain(self.ui_domain))
        if not self.portal_id:
            raise ValueError("the HubSpot portal id is empty")

    @classmethod
    def from_integration(cls, integration: Integration, settings: IntegrationSettings,
                         ui_domain: str | None = None) -> MappingContext:
        if not integration.remote_id:
            raise ReconnectRequired(f"Integration {integration.id} is not connected to a "
                                    "HubSpot portal: connect it first")
        return cls(settings=settings, portal_id=integration.remote_id,
                   currency=integration.currency,
                   ui_domain=ui_domain or integration.ui_domain)

    def setting_id(self, key: str) -> int:
        """A settings id the drafts need; missing means the run should not have started."""
        value = self.settings.ids.get(key)
        if value is None:
            raise SetupIncomplete([f"the {SETTING_LABELS.get(key, key)} is not set"])
        return value

    def deal_link(self, deal_id: str) -> str:
        """R-DEAL-5: `https://<uiDomain>/contacts/<portal id>/deal/<deal id>`."""
        return f"https://{self.ui_domain}/contacts/{self.portal_id}/deal/{deal_id}"


def normalize_ui_domain(value: str | None) -> str:
    """`app-eu1.hubspot.com` from "https://app-eu1.hubspot.com/" and the like; the default when
    blank. A value that is not a host name is refused rather than written into every memo."""
    host = (value or "").strip()
    host = re.sub(r"^[a-z]+://", "", host, flags=re.IGNORECASE).rstrip("/")
    if not host:
        return DEFAULT_UI_DOMAIN
    if not _HOST.fullmatch(host):
        raise ValueError(f"HubSpot uiDomain {value!r} is not a host name")
    return host.lower()
