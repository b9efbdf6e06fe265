"""The closed-won deal search, and what makes a deal read by id qualify (R-DEAL-1, R-DEAL-3).

A deal qualifies when it is in the internal stage `closedwon` and closes on or after the
integration's cutoff; `why_deal_lost` says, in an accountant's words, why one no longer does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from hubspot_ledger.extract.models import CLOSED_WON
from hubspot_ledger.extract.reads import (
    Raw,
    Window,
    dated_on_or_after,
    modified_in,
    on_or_after_filter,
    valid_pages,
)
from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.load.records import RemoteType
from hubspot_ledger.maps import hubspot_properties


def closed_won_deals(hook: HubSpotHook, cutoff: dt.date, window: Window | None = None
                     ) -> Iterator[list[Raw]]:
    """Deals in the internal stage `closedwon`, closed on or after the cutoff (R-DEAL-1)."""
    yield from valid_pages(hook.search_pages(
        "deals", [{"propertyName": "dealstage", "operator": "EQ", "value": CLOSED_WON},
                  *modified_in(window)],
        hubspot_properties(RemoteType.DEAL), any_of=on_or_after_filter("closedate", cutoff)))


def why_deal_lost(raw: Raw | None, cutoff: dt.date) -> str | None:
    """Why a deal no longer qualifies (None: it does), in an accountant's words."""
    if raw is None:
        return "was archived or deleted in HubSpot"
    props = raw.get("properties") or {}
    stage = props.get("dealstage")
    if stage != CLOSED_WON:
        return f"left closed won (its stage is now {stage or 'empty'})"
    if not dated_on_or_after(raw, "closedate", cutoff):
        return f"now closes before the cutoff {cutoff}"
    return None


def qualifying_deals(raws: Iterable[Raw], cutoff: dt.date) -> list[Raw]:
    return [r for r in raws if (r.get("properties") or {}).get("dealstage") == CLOSED_WON
            and dated_on_or_after(r, "closedate", cutoff)]
