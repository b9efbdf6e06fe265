"""Shared fixtures: a throw-away ledger database per test run (per xdist worker) and a test
Airflow home.

The environment is set at import time, before anything imports Airflow, because Airflow reads
its configuration when first imported. Tests never touch the operator's real ledger: the
`ledger_default` connection always points at this run's own database.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from tiers import require_tier_markers

from hubspot_ledger.config import PROJECT_ROOT, apply_airflow_env_defaults
from hubspot_ledger_tools.sandbox.testing import SandboxServer

PG_ADMIN_URI = os.environ.get(
    "HUBSPOT_LEDGER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_DB_NAME = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
TEST_LEDGER_URI = PG_ADMIN_URI.rsplit("/", 1)[0] + f"/{TEST_DB_NAME}"

# `make test` runs the suite on several pytest-xdist workers (gw0, gw1, …). Each is a test run
# of its own: its own ledger database (the pid above), Airflow home (an embedded metadata DB that
# two processes must not share) and DAG-factory state. A plain `pytest` uses .airflow-test itself.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_HOME = PROJECT_ROOT / ".airflow-test" / ("workers/" + _WORKER if _WORKER else "")

os.environ["AIRFLOW_HOME"] = str(TEST_HOME)
os.environ["AIRFLOW_CONN_LEDGER_DEFAULT"] = TEST_LEDGER_URI
os.environ.setdefault("HUBSPOT_LEDGER_RETRY_DELAY_SECONDS", "1")
os.environ.setdefault("HUBSPOT_LEDGER_STATE_DIR", str(TEST_HOME / "state"))
apply_airflow_env_defaults()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    require_tier_markers(config, items)


def _admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_URI, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def ledger_db() -> Iterator[str]:
    """This run's ledger database, migrated; dropped when the run ends."""
    from hubspot_ledger.hooks.ledger import LedgerHook

    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEST_DB_NAME)))
    try:
        LedgerHook().migrate()
        yield TEST_LEDGER_URI
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(TEST_DB_NAME)
                )
            )


@pytest.fixture
def ledger(ledger_db: str) -> Iterator[psycopg.Connection]:
    """A connection to an empty migrated ledger (every data table truncated before the test)."""
    with psycopg.connect(ledger_db, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'ledger' "
            "AND tablename <> 'schema_migrations'"
        ).fetchall()
        if tables:
            names = sql.SQL(", ").join(sql.Identifier("ledger", t) for (t,) in tables)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))
        yield conn


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The HubSpot sandbox of this run (seed 1, tiny portal), over real HTTP. Its client secret
    is this run's own, so that finding it anywhere (logs, responses, the ledger) is a leak.
    Folders needing another portal override this fixture (tests/reliability)."""
    secret = f"test-client-secret-{secrets.token_hex(16)}"
    with SandboxServer(seed=1, scale="tiny", client_secret=secret) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The session's sandbox in its initial state (data, config, tokens, faults, request log),
    and left so: the next test sharing it (the api-server's, say) finds no fault of this one."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The test Airflow home with a migrated embedded metadata DB (prepared once)."""
    from hubspot_ledger.config import prepare_airflow_home

    return prepare_airflow_home()


# Chart of accounts of a ready-to-sync organization: setting → (code, name, type).
BOOKS = {
    "ar_account": ("1100", "Accounts receivable", "asset"),
    "deferred_revenue_account": ("2400", "Deferred revenue", "liability"),
    "expense_account": ("5000", "Cost of sales", "expense"),
    "income_account": ("4000", "Revenue", "income"),
    "clearing_account": ("1190", "HubSpot clearing", "asset"),
}
BOOKS_COMPANY = "Acme Ltd"


@pytest.fixture
def books(ledger: psycopg.Connection) -> Callable[..., int]:
    """Make an integration whose organization has the accounts and company of BOOKS.

    `books("Org", configured=True)` also saves every required setting (setup complete but for
    the HubSpot connection). Returns the integration id.
    """
    import datetime as dt

    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.load.records import AccountType

    def make(organization: str = "Acme Corp", *, configured: bool = False,
             cutoff: dt.date = dt.date(2025, 1, 1)) -> int:
        hook = LedgerHook()
        integration_id = hook.integrations.create(organization, cutoff)
        org_id = hook.integrations.get(integration_id).organization_id
        existing = hook.settings.account_types(org_id, [c for c, _, _ in BOOKS.values()])
        for code, name, kind in BOOKS.values():
            if code not in existing:
                hook.settings.create_account(org_id, code, name, AccountType(kind))
        if hook.settings.company_id(org_id, BOOKS_COMPANY) is None:
            hook.settings.create_company(org_id, BOOKS_COMPANY, "USD")
        if configured:
            from hubspot_ledger.integration_settings import save_settings

            save_settings(integration_id, accounts={k: v[0] for k, v in BOOKS.items()},
                          company=BOOKS_COMPANY)
        return integration_id

    return make
