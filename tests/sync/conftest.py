"""The `portal` fixture: the crafted HubSpot portal of portal.py, synced by real DAG runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import check_api_version, use_sandbox_app

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .portal import CUTOFF, LOCKED, ORGANIZATION, Portal, books, build_portal, connect, truncate


@pytest.fixture(scope="module")
def portal(ledger_db: str, airflow_home: Any) -> Iterator[Portal]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=1, scale="tiny") as sb, \
            psycopg.connect(ledger_db, autocommit=True) as conn:
        use_sandbox_app(mp, sb)
        truncate(conn)
        build_portal(sb)
        hook = LedgerHook()
        integration_id = hook.integrations.create(ORGANIZATION, CUTOFF)
        company_id = books(hook, integration_id)
        conn.execute("INSERT INTO ledger.accounting_periods (company_id, start_date, end_date, "
                     "locked) VALUES (%s, %s, %s, true)", [company_id, *LOCKED])
        connect(sb, integration_id)
        check_api_version(sb)
        sb.clear_requests()
        yield Portal(sandbox=sb, ledger=conn, integration_id=integration_id)
        check_api_version(sb)
