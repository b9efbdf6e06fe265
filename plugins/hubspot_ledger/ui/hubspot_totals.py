"""HubSpot's side of the reconciliation, read live from HubSpot through `HubSpotHook`.

Live, not from what the last sync read: a sync keeps no copy of what it read (staging is
cleared when the run ends, and an incremental run reads only what changed), so only HubSpot
itself can say what is closed won now. The read is the sync's own closed-won search
(`extract.closed_won`, R-DEAL-1: stage `closedwon`, or the won stages the integration's
`won_stages` setting names, closed on or after the cutoff) plus the deal's `amount`, through
the same token source and the portal's shared rate budget as a run; it is made when an
operator opens the reconciliation, never on the overview.
"""

from __future__ import annotations

from collections.abc import Iterator

from hubspot_ledger.errors import UserFacingError
from hubspot_ledger.extract.closed_won import resolve_won_stages, stage_filter
from hubspot_ledger.extract.models import BadValue, Deal
from hubspot_ledger.extract.reads import Raw, on_or_after_filter, valid_pages
from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import Integration, RemoteType
from hubspot_ledger.maps import hubspot_properties
from hubspot_ledger.reconcile import HubSpotDeal
from hubspot_ledger.tokens import IntegrationTokens

PROPERTIES = (*hubspot_properties(RemoteType.DEAL), "amount")


class NotConnected(UserFacingError):
    http_status = 409


def _deal(raw: Raw, currency: str) -> HubSpotDeal | None:
    """The deal as the panel shows it; None when its close date cannot be read (the sync logs
    that deal as a problem, which the panel shows)."""
    deal = Deal.model_validate(raw)
    try:
        close_date = deal.close_date
    except BadValue:
        return None
    if close_date is None:
        return None
    try:
        amount = deal.decimal("amount")
    except BadValue:  # shown as "no amount"; HubSpot's UI shows the same text
        amount = None
    return HubSpotDeal(id=deal.id, name=deal.name or "", close_date=close_date,
                       currency=deal.currency_code or currency, amount=amount)


def _pages(hook: HubSpotHook, integration: Integration, won: frozenset[str]
           ) -> Iterator[list[Raw]]:
    yield from valid_pages(hook.search_pages(
        "deals", [stage_filter(won)], PROPERTIES,
        any_of=on_or_after_filter("closedate", integration.cutoff_date)))


def closed_won_deals(integration: Integration, *, ledger: LedgerHook | None = None
                     ) -> list[HubSpotDeal]:
    """Every deal of the integration's portal in a stage its `won_stages` setting counts as
    won (issue 14), closed on or after its cutoff: what the sync imports."""
    if not integration.remote_id:
        raise NotConnected(f"Integration {integration.id} is not connected to HubSpot yet: "
                           "connect it to reconcile")
    ledger = ledger or LedgerHook()
    won_setting = ledger.settings.get(integration.id).won_stages
    limiter = ledger.rate_limiter(str(integration.remote_id))
    try:
        hook = HubSpotHook(token_source=IntegrationTokens(integration.id, ledger=ledger),
                           limiter=limiter)
        won = resolve_won_stages(hook, won_setting)
        deals = [_deal(raw, integration.currency or "")
                 for page in _pages(hook, integration, won) for raw in page]
    finally:
        limiter.close()
    return [d for d in deals if d is not None]
