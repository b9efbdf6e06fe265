"""Issue 14's settings through real DAG runs against the sandbox and PostgreSQL.

One integration over the crafted portal plus beyond_portal's records; each test changes one
setting and runs the DAG once (tests are in run order, each reads the ledger the runs left):
1. defaults: the reference behaviour (renewals not won, every obligation immediate, invoices
   to "Unknown"), and the deal pipelines are never read;
2. `--recognition hubspot-terms`: lines with a term become ratable over their service period
   although HubSpot changed nothing (the setting dropped the deals' coverage);
3. `--won-stages all-pipelines`: the renewals pipeline's won deal becomes a contract, the
   pipelines read once in the run; an explicit list naming an unknown stage stops the next
   run at validate_setup, and going back to `closedwon` voids the renewal's draft;
4. `--invoice-parties hubspot`: invoices go to their company's or contact's customer and the
   configured accounting company (with an explicit won-stages list in the same run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from hubspot_ledger.errors import InvalidInput
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import get_settings, save_settings
from hubspot_ledger.ui.hubspot_totals import closed_won_deals

from .beyond_portal import (
    C_INITECH,
    D_BAD_TERM,
    D_RENEWAL,
    D_RENEWAL_OPEN,
    D_TERMS,
    I_COMPANY,
    I_CONTACT,
    I_KNOWN_CONTACT,
    I_NEW_COMPANY,
    I_NO_EMAIL,
    KNOWN_CUSTOMER,
    L_2W,
    L_3M,
    L_12M,
    L_ONE_OFF,
    beyond_portal,
)
from .portal import C_GLOBEX, COMPANY, D_MAIN, I_MAIN, Portal

pytestmark = [pytest.mark.e2e]
PIPELINES = "GET /crm/v3/pipelines/deals"


@pytest.fixture(scope="module")
def beyond(ledger_db: str, airflow_home: Any) -> Iterator[Portal]:
    with beyond_portal(ledger_db) as portal:
        yield portal


def _run(portal: Portal) -> None:
    result = portal.run()
    assert result.succeeded, result.task_states


def _why(portal: Portal, remote_type: str) -> str:
    """What the last run decided to read of a type (full or incremental, and why)."""
    row = portal.ledger.execute(
        "SELECT reads -> %s ->> 'why' FROM ledger.sync_runs WHERE integration_id = %s "
        "ORDER BY id DESC LIMIT 1", [remote_type, portal.integration_id]).fetchone()
    assert row is not None
    return str(row[0])


def _status(portal: Portal, deal_id: str) -> str | None:
    local = portal.local_id("deal", deal_id)
    return None if local is None else str(portal.row("contracts", local)["status"])


def _periods(portal: Portal, deal_id: str) -> dict[str, tuple[Any, ...]]:
    rows = portal.ledger.execute(
        "SELECT r.remote_id, p.recognition_strategy, p.service_start_date, p.service_end_date "
        "FROM ledger.performance_obligations p JOIN ledger.integration_records r "
        "ON r.local_id = p.id AND r.local_table = 'performance_obligations' "
        "WHERE p.contract_id = %s", [portal.local_id("deal", deal_id)]).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _party(portal: Portal, invoice_id: str) -> tuple[Any, ...]:
    """(customer name, type, email, accounting company name) of an imported invoice."""
    row = portal.ledger.execute(
        "SELECT c.name, c.customer_type, c.email, k.name FROM ledger.invoices v "
        "JOIN ledger.customers c ON c.id = v.customer_id "
        "JOIN ledger.companies k ON k.id = v.company_id WHERE v.id = %s",
        [portal.local_id("invoice", invoice_id)]).fetchone()
    assert row is not None
    return tuple(row)


def _pipeline_reads(portal: Portal) -> int:
    return sum(1 for r in portal.requests_of(len(portal.runs) - 1)
               if r["endpoint"] == PIPELINES)


def test_defaults_keep_the_reference_behaviour(beyond: Portal) -> None:
    settings = get_settings(beyond.integration_id).to_dict()
    assert (settings["invoice_parties"], settings["won_stages"], settings["recognition"]) == (
        "unknown", "closedwon", "immediate")
    _run(beyond)
    assert _status(beyond, D_RENEWAL) is None  # R-DEAL-3: only `closedwon`
    assert _pipeline_reads(beyond) == 0
    assert {v[0] for v in _periods(beyond, D_TERMS).values()} == {"immediate"}
    assert {v[1:] for v in _periods(beyond, D_TERMS).values()} == {(None, None)}
    assert beyond.errors(D_BAD_TERM) == []  # the term is not read at all by default
    for invoice in (I_COMPANY, I_CONTACT, I_MAIN):  # R-INV-6
        assert _party(beyond, invoice) == ("Unknown", "company", None, "Unknown")


def test_recognition_from_hubspot_terms(beyond: Portal) -> None:
    with pytest.raises(InvalidInput, match="recognition must be immediate or hubspot-terms"):
        save_settings(beyond.integration_id, recognition="monthly")
    save_settings(beyond.integration_id, recognition="hubspot-terms")
    _run(beyond)
    assert _why(beyond, "deal").startswith("full read")  # the setting dropped the coverage
    assert _why(beyond, "invoice").startswith("incremental")  # invoices are not affected
    assert _periods(beyond, D_TERMS) == {
        L_12M: ("ratable", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        L_3M: ("ratable", dt.date(2026, 1, 15), dt.date(2026, 4, 14)),
        # no billing start date: from the deal's close date, two weeks
        L_2W: ("ratable", dt.date(2025, 12, 20), dt.date(2026, 1, 2)),
        L_ONE_OFF: ("immediate", None, None),
    }
    assert _status(beyond, D_TERMS) == "draft"
    assert beyond.errors(D_BAD_TERM) == [
        'Deal 990000000524 ("Badly typed term") not imported: line item 990000000607 '
        '("Line 607"): term (hs_recurring_billing_period) "12 months" is not a term such as '
        "P12M (12 months), P1Y, P6W or P30D; set the line's term again in HubSpot"]
    # The run went on: other deals are still there, unchanged.
    assert _status(beyond, D_MAIN) == "draft"
    assert {v[0] for v in _periods(beyond, D_MAIN).values()} == {"immediate"}


def test_won_stages_of_every_pipeline(beyond: Portal) -> None:
    save_settings(beyond.integration_id, won_stages="all-pipelines")
    _run(beyond)
    assert _why(beyond, "deal").startswith("full read")
    assert _pipeline_reads(beyond) == 1  # once per run, for both deal steps
    assert _why(beyond, "won deal stage") == (
        "71900002, closedwon (won stages setting: all-pipelines)")  # in the run report
    assert _status(beyond, D_RENEWAL) == "draft"
    assert beyond.row("contracts", beyond.local_id("deal", D_RENEWAL))["total_amount"] == \
        Decimal("500.0000")
    assert _status(beyond, D_RENEWAL_OPEN) is None
    assert _status(beyond, D_MAIN) == "draft"
    # The reconciliation's HubSpot side counts the same stages as won, so the renewal is not
    # reported "only in the ledger".
    integration = LedgerHook().integrations.get(beyond.integration_id)
    hubspot_side = {d.id for d in closed_won_deals(integration)}
    assert {D_RENEWAL, D_MAIN} <= hubspot_side and D_RENEWAL_OPEN not in hubspot_side


def test_an_unknown_won_stage_stops_the_run_and_closedwon_voids_the_renewal(
        beyond: Portal) -> None:
    save_settings(beyond.integration_id, won_stages="closedwon, 71900002 ,nosuchstage")
    assert get_settings(beyond.integration_id).won_stages == "closedwon,71900002,nosuchstage"
    result = beyond.run()
    assert not result.succeeded
    assert result.task_states["validate_setup"] == "failed"
    failure = beyond.ledger.execute(
        "SELECT failures ->> 'validate_setup' FROM ledger.sync_runs WHERE integration_id = %s "
        "ORDER BY id DESC LIMIT 1", [beyond.integration_id]).fetchone()
    assert failure is not None
    assert failure[0] == ("Setup incomplete: won stage 'nosuchstage' is not a stage of any deal "
                          "pipeline in HubSpot; correct the won stages setting")
    save_settings(beyond.integration_id, won_stages="closedwon")
    _run(beyond)
    assert _pipeline_reads(beyond) == 0
    assert _status(beyond, D_RENEWAL) == "void"
    assert any("left closed won" in m for m in beyond.errors(D_RENEWAL))


def test_invoice_parties_from_hubspot(beyond: Portal) -> None:
    # With an explicit list of won stages too: checked against the pipelines once (at
    # validate_setup), and the renewal's voided draft comes back.
    save_settings(beyond.integration_id, invoice_parties="hubspot",
                  won_stages="71900002,closedwon")
    _run(beyond)
    assert _why(beyond, "invoice").startswith("full read")
    assert _pipeline_reads(beyond) == 1
    assert _status(beyond, D_RENEWAL) == "draft"
    assert _party(beyond, I_COMPANY) == ("Globex Ltd", "company", None, COMPANY)
    assert beyond.row("invoices", beyond.local_id("invoice", I_COMPANY))["customer_id"] == \
        beyond.local_id("company", C_GLOBEX)  # the customer its deals have, not a new one
    # A company no deal reached: created through R-COMP-2's mapping, and linked.
    assert _party(beyond, I_NEW_COMPANY) == ("Initech", "company", None, COMPANY)
    assert beyond.row("customers", beyond.local_id("company", C_INITECH))["city"] == "Austin"
    assert _party(beyond, I_CONTACT) == ("Alice Able", "individual", "Alice.Able@Example.com",
                                         COMPANY)
    # Matched by email, whatever the case: the customer accountants already had.
    assert _party(beyond, I_KNOWN_CONTACT) == (KNOWN_CUSTOMER[0], "individual",
                                               KNOWN_CUSTOMER[1], COMPANY)
    assert beyond.ledger.execute(
        "SELECT count(*) FROM ledger.customers WHERE lower(email) = 'bob@example.com'"
    ).fetchone() == (1,)
    # No company, and a contact without an email: nobody to match, so "Unknown".
    assert _party(beyond, I_NO_EMAIL) == ("Unknown", "company", None, COMPANY)
    assert _party(beyond, I_MAIN) == ("Unknown", "company", None, COMPANY)
