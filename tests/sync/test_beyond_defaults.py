"""Issue 14: with every new setting at its default, the ledger is exactly what the reference
connector wrote before those settings existed.

One DAG run over the crafted portal of portal.py plus beyond_portal's records (invoices with
companies and contacts, a renewals-pipeline deal, lines with recurring terms), compared with
`beyond_defaults.json`: the whole ledger as HubSpot ids and values (ledger_view) and every
record's fingerprint, as main wrote them without issue 14 (written at e39fedd; main at
a109f73 and 79d61ac writes the same file). To write the file again from another checkout's
code:

    BEYOND_DEFAULTS_WRITE=1 PYTHONPATH=<checkout>/plugins:<checkout>/tools \\
        pytest tests/sync/test_beyond_defaults.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .beyond_portal import I_COMPANY, I_CONTACT, build_beyond
from .ledger_view import view
from .portal import Portal

pytestmark = [pytest.mark.e2e]
EXPECTED = Path(__file__).with_name("beyond_defaults.json")


def _ledger(portal: Portal) -> dict[str, list[list[str]]]:
    dumped = {name: sorted(list(row) for row in rows)
              for name, rows in view(portal.ledger, portal.integration_id).items()}
    dumped["fingerprints"] = sorted(
        [str(v) for v in row] for row in portal.ledger.execute(
            "SELECT remote_type, remote_id, local_table, fingerprint "
            "FROM ledger.integration_records WHERE integration_id = %s",
            [portal.integration_id]).fetchall())
    return dumped


def test_defaults_leave_the_ledger_as_the_reference_connector_wrote_it(portal: Portal) -> None:
    build_beyond(portal.sandbox)
    result = portal.run()
    assert result.succeeded, result.task_states
    ledger = _ledger(portal)
    if os.environ.get("BEYOND_DEFAULTS_WRITE"):
        EXPECTED.write_text(json.dumps(ledger, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {EXPECTED.name}")
    expected: dict[str, Any] = json.loads(EXPECTED.read_text())
    assert ledger.keys() == expected.keys()
    for name in expected:
        assert ledger[name] == expected[name], name
    assert portal.ledger.execute(
        "SELECT count(*) FROM ledger.performance_obligations WHERE service_start_date IS NOT "
        "NULL OR service_end_date IS NOT NULL").fetchone() == (0,)
    assert not [r for r in portal.sandbox.requests()
                if "/pipelines/" in r["path"] or r["object_type"] == "contacts"
                or r.get("to_object_type") == "contacts"]


def test_without_the_contacts_scope_invoice_parties_come_from_companies_only(
        portal: Portal) -> None:
    """The portal above granted the default scopes, without crm.objects.contacts.read: with
    `--invoice-parties hubspot` the company still decides, and an invoice with only a contact
    stays with "Unknown" instead of failing the run on HubSpot's 403."""
    from hubspot_ledger.integration_settings import save_settings

    save_settings(portal.integration_id, invoice_parties="hubspot")
    result = portal.run()
    assert result.succeeded, result.task_states

    def customer(invoice_id: str) -> str:
        row = portal.ledger.execute(
            "SELECT c.name FROM ledger.invoices v JOIN ledger.customers c "
            "ON c.id = v.customer_id WHERE v.id = %s",
            [portal.local_id("invoice", invoice_id)]).fetchone()
        assert row is not None
        return str(row[0])

    assert customer(I_COMPANY) == "Globex Ltd"
    assert customer(I_CONTACT) == "Unknown"
    sent = portal.requests_of(len(portal.runs) - 1)
    assert [r for r in sent if "companies" in (r["object_type"], r.get("to_object_type"))
            and r["object_type"] == "invoices"]
    assert not [r for r in sent if "contacts" in (r["object_type"], r.get("to_object_type"))]
