"""HubSpot-defined association types between the sandbox's objects (hubspot-api.md §2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubspot_ledger_tools.sandbox.records import PortalData


@dataclass(frozen=True)
class AssociationType:
    type_id: int
    label: str | None  # "Primary" for primary types; None for unlabeled ones
    v3_name: str  # the `type` of inline v3 associations, e.g. "deal_to_company_unlabeled"


@dataclass(frozen=True)
class Pair:
    """The types of one direction: every link carries `unlabeled`; a primary one `primary` too."""

    unlabeled: AssociationType
    primary: AssociationType | None = None


def _pair(src: str, dst: str, unlabeled: int, primary: int | None = None) -> Pair:
    # Pairs that have a primary flavour name their plain type "<a>_to_<b>_unlabeled".
    suffix = "" if primary is None else "_unlabeled"
    return Pair(AssociationType(unlabeled, None, f"{src}_to_{dst}{suffix}"),
                AssociationType(primary, "Primary", f"{src}_to_{dst}") if primary else None)


PAIRS: dict[tuple[str, str], Pair] = {
    ("deals", "companies"): _pair("deal", "company", 341, 5),
    ("companies", "deals"): _pair("company", "deal", 342, 6),
    ("deals", "line_items"): _pair("deal", "line_item", 19),
    ("line_items", "deals"): _pair("line_item", "deal", 20),
    ("invoices", "line_items"): _pair("invoice", "line_item", 409),
    ("line_items", "invoices"): _pair("line_item", "invoice", 410),
    ("invoices", "companies"): _pair("invoice", "company", 179),
    ("companies", "invoices"): _pair("company", "invoice", 180),
    ("deals", "invoices"): _pair("deal", "invoice", 176),
    ("invoices", "deals"): _pair("invoice", "deal", 175),
    ("invoices", "contacts"): _pair("invoice", "contact", 177),
    ("contacts", "invoices"): _pair("contact", "invoice", 178),
    ("contacts", "companies"): _pair("contact", "company", 279, 1),
    ("companies", "contacts"): _pair("company", "contact", 280, 2),
}

BY_ID: dict[int, AssociationType] = {}
for _pair_types in PAIRS.values():
    for _kind in (_pair_types.unlabeled, _pair_types.primary):
        if _kind is not None:
            BY_ID[_kind.type_id] = _kind


def link(data: PortalData, a_type: str, a_id: int, b_type: str, b_id: int,
         primary: bool = False) -> None:
    """Associate two records both ways, as HubSpot's default association does."""
    forward, backward = PAIRS[(a_type, b_type)], PAIRS[(b_type, a_type)]
    data.add_link(a_type, a_id, b_type, b_id, _ids(forward, primary))
    data.add_link(b_type, b_id, a_type, a_id, _ids(backward, primary))


def _ids(pair: Pair, primary: bool) -> list[int]:
    if primary and pair.primary is not None:
        return [pair.primary.type_id, pair.unlabeled.type_id]
    return [pair.unlabeled.type_id]


def v4_types(type_ids: list[int]) -> list[dict[str, Any]]:
    """`associationTypes` of a v4 answer: the primary label first, then the unlabeled type."""
    ordered = sorted(type_ids, key=lambda t: BY_ID[t].label is None)
    return [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": BY_ID[t].label}
            for t in ordered]
