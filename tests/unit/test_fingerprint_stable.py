"""Fingerprints are stored in integration_records: if the same draft hashed differently after
an upgrade, the next run would report every record of every integration as updated (R-PROD-5:
a re-run changes nothing). This pins the hash of a known draft."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from hubspot_ledger.drafts import (
    ContractDraft,
    CustomerDraft,
    ItemDraft,
    ObligationDraft,
    fingerprint,
)
from hubspot_ledger.load.records import ItemType

pytestmark = pytest.mark.unit


def _contract() -> ContractDraft:
    item = ItemDraft("p1", "SKU", "name", "desc", ItemType.SERVICE, 1, 2, 3)
    lines = tuple(ObligationDraft(f"l{k}", "p1", item, "d", Decimal("2"), Decimal("150.50"),
                                  None, None, Decimal("301.00")) for k in range(3))
    return ContractDraft("d1", 1, CustomerDraft("c1", "Cust"), "Deal", "memo", "USD",
                         dt.date(2024, 1, 1), Decimal("903.00"), lines)


def test_r_prod_5_a_draft_hashes_as_it_did_before() -> None:
    assert fingerprint(_contract()) == (
        "35cafd66e234e3eedb67c270ca98a63bcb5ae3cb76e335914e3935797e42727d")


def test_what_a_draft_does_not_write_leaves_its_fingerprint_alone() -> None:
    draft = _contract()
    other_item = ItemDraft("p1", "OTHER", "x", None, ItemType.GOODS, 9, 9, None)
    moved = replace(draft, warnings=("a warning",), obligations=tuple(
        replace(o, item=other_item) for o in draft.obligations))
    assert fingerprint(moved) == fingerprint(draft)
    assert fingerprint(replace(draft, memo="changed")) != fingerprint(draft)
