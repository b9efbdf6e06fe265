"""The closed-won deal search, and what makes a deal read by id qualify (R-DEAL-1, R-DEAL-3).

A deal qualifies when it is in a won stage and closes on or after the integration's cutoff;
`why_deal_lost` says, in an accountant's words, why one no longer does. The won stages are the
internal `closedwon` of the default pipeline (R-DEAL-3), or with the won-stages setting
(issue 14) every stage HubSpot's deal pipelines mark closed won, or a list of stage ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from hubspot_ledger.errors import SetupIncomplete
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
from hubspot_ledger.load.records import WON_ALL_PIPELINES, WON_CLOSEDWON, RemoteType
from hubspot_ledger.maps import hubspot_properties

DEFAULT_WON = frozenset({CLOSED_WON})


def closed_won_deals(hook: HubSpotHook, cutoff: dt.date, window: Window | None = None,
                     won: frozenset[str] = DEFAULT_WON) -> Iterator[list[Raw]]:
    """Deals in a won stage, closed on or after the cutoff (R-DEAL-1)."""
    yield from valid_pages(hook.search_pages(
        "deals", [stage_filter(won), *modified_in(window)],
        hubspot_properties(RemoteType.DEAL), any_of=on_or_after_filter("closedate", cutoff)))


def stage_filter(won: frozenset[str]) -> dict[str, Any]:
    """`dealstage EQ closedwon` for one stage (the reference connector's request), else IN."""
    if len(won) == 1:
        return {"propertyName": "dealstage", "operator": "EQ", "value": next(iter(won))}
    return {"propertyName": "dealstage", "operator": "IN", "values": sorted(won)}


def why_deal_lost(raw: Raw | None, cutoff: dt.date, won: frozenset[str] = DEFAULT_WON
                  ) -> str | None:
    """Why a deal no longer qualifies (None: it does), in an accountant's words."""
    if raw is None:
        return "was archived or deleted in HubSpot"
    props = raw.get("properties") or {}
    stage = props.get("dealstage")
    if stage not in won:
        return f"left closed won (its stage is now {stage or 'empty'})"
    if not dated_on_or_after(raw, "closedate", cutoff):
        return f"now closes before the cutoff {cutoff}"
    return None


def qualifying_deals(raws: Iterable[Raw], cutoff: dt.date, won: frozenset[str] = DEFAULT_WON
                     ) -> list[Raw]:
    return [r for r in raws if (r.get("properties") or {}).get("dealstage") in won
            and dated_on_or_after(r, "closedate", cutoff)]


# -- which stages are won (issue 14, `--won-stages`) ------------------------------------------


def won_stages(setting: str, pipelines: Iterable[Mapping[str, Any]] | None) -> frozenset[str]:
    """The stage ids that count as won under `setting`, given HubSpot's deal pipelines (only
    read when the setting needs them). SetupIncomplete when the setting names a stage that no
    pipeline has, or no pipeline has a won stage at all: choosing deals on a guess would
    void or import the wrong contracts."""
    if setting == WON_CLOSEDWON:
        return DEFAULT_WON
    stages = {str(s.get("id")): s for p in pipelines or () for s in _stages(p)}
    if setting == WON_ALL_PIPELINES:
        found = frozenset(i for i, s in stages.items() if is_won(s))
        if not found:
            raise SetupIncomplete(["won stages: no stage of HubSpot's deal pipelines is marked "
                                   "closed won; mark one in HubSpot or choose the won stages"])
        return found
    wanted = [s for s in setting.split(",") if s]
    unknown = [s for s in wanted if s not in stages]
    if unknown:
        raise SetupIncomplete([f"won stage {s!r} is not a stage of any deal pipeline in "
                               "HubSpot; correct the won stages setting" for s in unknown])
    return frozenset(wanted)


def is_won(stage: Mapping[str, Any]) -> bool:
    """HubSpot marks a won stage closed with probability 1.0 (hubspot-api.md, pipelines)."""
    meta = stage.get("metadata") or {}
    if str(meta.get("isClosed", "")).strip().lower() != "true":
        return False
    try:
        return float(str(meta.get("probability", ""))) == 1.0
    except ValueError:
        return False


def _stages(pipeline: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    stages = pipeline.get("stages") if isinstance(pipeline, Mapping) else None
    return [s for s in stages or () if isinstance(s, Mapping) and s.get("id") is not None
            and not s.get("archived")]


def deal_pipelines(hook: HubSpotHook) -> list[Mapping[str, Any]]:
    """HubSpot's deal pipelines with their stages (one request)."""
    results = hook.request("GET", hook.paths.pipelines("deals")).get("results")
    return [p for p in results or () if isinstance(p, Mapping)]


def resolve_won_stages(hook: HubSpotHook, setting: str) -> frozenset[str]:
    """`won_stages` reading the pipelines only when the setting needs them."""
    return won_stages(setting, None if setting == WON_CLOSEDWON else deal_pipelines(hook))
