"""Incremental runs (issue 5): a scheduled run asks HubSpot only for what changed since the last
successful run, still honours the cutoff, and a run with nothing new costs next to nothing.

The steps run in-process through `sync.runner.run_step` (what each Airflow task calls), in the
DAG's order, against the sandbox over HTTP and this run's ledger database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from support import use_sandbox_app
from sync.portal import books, connect, truncate  # tests/sync/portal.py

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.sync.run_report import settle_run
from hubspot_ledger.sync.runner import run_step
from hubspot_ledger_tools.sandbox.testing import SandboxServer

pytestmark = [pytest.mark.integration]
STEPS = ("invoices", "products", "companies", "deals")


@dataclass
class Portal:
    sandbox: SandboxServer
    ledger: psycopg.Connection
    integration_id: int

    def sync(self, full_refresh: bool = False) -> list[dict[str, Any]]:
        """One run, every step; returns the requests HubSpot received."""
        first = self.sandbox.last_seq()
        run = f"test-{uuid.uuid4().hex[:8]}"
        for step in STEPS:
            run_step(step, self.integration_id, run, full_refresh=full_refresh)
        ok, report = settle_run(self.integration_id, run)
        assert ok, report
        return self.sandbox.requests(since=first)

    def counts(self) -> dict[str, dict[str, int]]:
        row: Any = self.ledger.execute(
            "SELECT counts FROM ledger.sync_runs ORDER BY id DESC LIMIT 1").fetchone()
        return dict(row[0])

    def contract_name(self, deal_id: str) -> str | None:
        row = self.ledger.execute(
            "SELECT c.name FROM ledger.integration_records r JOIN ledger.contracts c "
            "ON c.id = r.local_id WHERE r.remote_type = 'deal' AND r.remote_id = %s",
            [deal_id]).fetchone()
        return None if row is None else str(row[0])


@pytest.fixture(scope="module")
def portal(ledger_db: str) -> Iterator[Portal]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=3, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        mp.setenv("HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS", "0")
        truncate(conn)
        hook = LedgerHook()
        integration_id = hook.integrations.create("Incremental Ltd", __import__(
            "datetime").date(2024, 1, 1))
        books(hook, integration_id)
        connect(sb, integration_id)
        yield Portal(sandbox=sb, ledger=conn, integration_id=integration_id)


def _endpoints(sent: list[dict[str, Any]]) -> list[str]:
    return [r["endpoint"] for r in sent]


def _closed_won_deals(sb: SandboxServer, portal: Portal) -> list[str]:
    return [r[0] for r in portal.ledger.execute(
        "SELECT remote_id FROM ledger.integration_records WHERE remote_type = 'deal' "
        "ORDER BY remote_id").fetchall()]


def test_first_run_reads_everything(portal: Portal) -> None:
    sent = _endpoints(portal.sync())
    assert "GET /crm/v3/objects/products" in sent  # the whole listing, not a search
    assert portal.counts()["deals"]["created"] > 0


def test_a_run_with_nothing_new_costs_next_to_nothing(portal: Portal) -> None:
    own = {kind: set(_open_problems(portal, kind, "hubspot")) for kind in ("deal", "invoice")}
    assert own["deal"] and own["invoice"], "the tiny portal has records that fail"
    retried = {kind: set(_open_problems(portal, kind)) - own[kind] for kind in own}
    sent = portal.sync()
    # Issue 12: a record that fails for its own data in HubSpot (or its lines') is not read
    # again while HubSpot does not change it; only those whose cause is elsewhere (the ledger,
    # a product) are, by id, with their lines and companies (issue 10 "open problems").
    for kind, path in (("deal", "deals"), ("invoice", "invoices")):
        read = [r for r in sent if r["endpoint"] == f"POST /crm/v3/objects/{path}/batch/read"]
        assert sum(int(r["inputs"]) for r in read) == len(retried[kind]), _endpoints(sent)
    retries = [r for r in sent if "batch/read" in r["endpoint"]]
    # The rest: a search per object type and one for the changed line items, shared by the
    # invoice and deal steps (5), and HubSpot's archived listings of deals, invoices, line items
    # (shared too) and products (4: deletions show nowhere else; DESIGN "lost deals and
    # invoices", "archived products").
    assert len(sent) - len(retries) <= 9, _endpoints(sent)
    assert _endpoints(sent).count("POST /crm/v3/objects/line_items/search") == 1
    assert _endpoints(sent).count("GET /crm/v3/objects/line_items") == 1
    for step, counts in portal.counts().items():
        assert counts["created"] == counts["updated"] == 0, (step, counts)


def _open_problems(portal: Portal, remote_type: str, cause: str | None = None) -> list[str]:
    """Records of this type that still fail; `cause`: only those whose cause is that."""
    return [r[0] for r in portal.ledger.execute(
        "SELECT DISTINCT remote_id FROM ledger.integration_errors WHERE remote_type = %s "
        "AND resolved_at IS NULL AND (%s::text IS NULL OR cause = %s)",
        [remote_type, cause, cause]).fetchall()]


def test_an_incremental_run_reads_only_what_changed(portal: Portal) -> None:
    sb = portal.sandbox
    deals = _closed_won_deals(sb, portal)
    renamed, repriced = deals[0], deals[1]
    sb.upsert("deals", {"dealname": "Renamed incrementally"}, id=renamed)
    line = sb.record("deals", repriced)["associations"]["line_items"][0]["id"]
    sb.upsert("line_items", {"price": "777"}, id=line)
    failing = {kind: set(_open_problems(portal, kind)) - set(
        _open_problems(portal, kind, "hubspot")) for kind in ("deal", "invoice")}
    sent = portal.sync()
    assert portal.contract_name(renamed) == "Renamed incrementally"
    assert portal.counts()["deals"]["updated"] == 2
    # Only the line items of the two changed deals and of the records that still fail for a
    # cause outside their HubSpot data (retried every run, issues 10 and 12) are read, nothing
    # else of the portal.
    owners = [("deals", d) for d in (renamed, repriced, *failing["deal"])]
    owners += [("invoices", i) for i in failing["invoice"]]
    lines = sum(len(sb.record(kind, i)["associations"].get("line_items", []))
                for kind, i in owners)
    reads = [r for r in sent if r["endpoint"] == "POST /crm/v3/objects/line_items/batch/read"]
    assert sum(int(r["inputs"]) for r in reads) == lines
    # No listing of the live products (only the recycle bin's, for deletions).
    assert [r for r in sent if r["endpoint"] == "GET /crm/v3/objects/products"
            and (r.get("query") or {}).get("archived") != "true"] == [], _endpoints(sent)


def test_full_refresh_reads_everything_again(portal: Portal) -> None:
    sent = _endpoints(portal.sync(full_refresh=True))
    assert "GET /crm/v3/objects/products" in sent
    assert all(c["created"] == 0 for c in portal.counts().values())
