"""Every table and column of DESIGN.md's ledger data contract exists, with the promised types."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import psycopg
import pytest

from hubspot_ledger.load.records import (
    AccountType,
    ContractStatus,
    CustomerType,
    IntegrationStatus,
    ItemType,
    ProblemCause,
    Provider,
    RecognitionStrategy,
    RemoteType,
    SyncRunStatus,
)

pytestmark = pytest.mark.integration

# Transcribed from DESIGN.md, "★ Ledger data contract" (every table also has `id`).
CONTRACT: dict[str, set[str]] = {
    "organizations": {"name"},
    "companies": {"organization_id", "name", "currency", "is_placeholder"},
    "accounts": {"organization_id", "code", "name", "account_type"},
    "accounting_periods": {"company_id", "start_date", "end_date", "locked"},
    "integrations": {
        "organization_id", "provider", "status", "status_message", "remote_id", "currency",
        "cutoff_date", "access_token", "refresh_token", "expires_in", "scope", "token_created_at",
    },
    "integration_settings": {
        "integration_id", "ar_account_id", "deferred_revenue_account_id", "expense_account_id",
        "income_account_id", "clearing_account_id", "company_id", "sync_invoices",
    },
    "customers": {
        "organization_id", "name", "customer_type", "email", "phone", "website", "address_line1",
        "address_line2", "city", "state", "postal_code", "country", "is_placeholder",
    },
    "items": {
        "organization_id", "sku", "name", "description", "item_type", "income_account_id",
        "expense_account_id", "deferred_revenue_account_id",
    },
    "contracts": {
        "organization_id", "company_id", "customer_id", "status", "name", "memo", "currency",
        "contract_date", "total_amount",
    },
    "performance_obligations": {
        "contract_id", "item_id", "description", "quantity", "unit_price", "discount_percent",
        "discount_amount", "amount", "recognition_strategy",
    },
    "invoices": {
        "organization_id", "company_id", "customer_id", "number", "invoice_date", "due_date",
        "currency", "total_amount",
    },
    "invoice_lines": {"invoice_id", "item_id", "description", "quantity", "unit_price", "amount"},
    "integration_records": {
        "integration_id", "remote_type", "remote_id", "local_table", "local_id",
    },
    "integration_errors": {
        "integration_id", "sync_run_id", "remote_type", "remote_id", "message", "created_at",
    },
    "sync_runs": {"integration_id", "started_at", "finished_at", "status", "counts"},
}

MONEY_AND_QUANTITIES = {
    ("contracts", "total_amount"), ("invoices", "total_amount"),
    ("performance_obligations", "quantity"), ("performance_obligations", "unit_price"),
    ("performance_obligations", "discount_percent"),
    ("performance_obligations", "discount_amount"), ("performance_obligations", "amount"),
    ("invoice_lines", "quantity"), ("invoice_lines", "unit_price"), ("invoice_lines", "amount"),
}
DATES = {
    ("accounting_periods", "start_date"), ("accounting_periods", "end_date"),
    ("integrations", "cutoff_date"), ("contracts", "contract_date"),
    ("invoices", "invoice_date"), ("invoices", "due_date"),
}
TIMESTAMPS = {
    ("integrations", "token_created_at"), ("integration_errors", "created_at"),
    ("sync_runs", "started_at"), ("sync_runs", "finished_at"),
}

# Each enumeration of records.py and the check constraints that must accept exactly its words.
VOCABULARIES: list[tuple[str, str, type[StrEnum]]] = [
    ("integrations", "status", IntegrationStatus),
    ("integrations", "provider", Provider),
    ("customers", "customer_type", CustomerType),
    ("items", "item_type", ItemType),
    ("contracts", "status", ContractStatus),
    ("performance_obligations", "recognition_strategy", RecognitionStrategy),
    ("accounts", "account_type", AccountType),
    ("sync_runs", "status", SyncRunStatus),
    ("integration_records", "remote_type", RemoteType),
    ("integration_errors", "remote_type", RemoteType),
    ("integration_errors", "cause", ProblemCause),
]


@pytest.fixture(scope="module")
def columns(ledger_db: str) -> dict[tuple[str, str], str]:
    """(table, column) -> data type of the migrated ledger schema."""
    with psycopg.connect(ledger_db) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'ledger'"
        ).fetchall()
    return {(table, column): data_type for table, column, data_type in rows}


def test_every_contract_table_and_column_exists(columns: dict[tuple[str, str], str]) -> None:
    missing = sorted(
        f"{table}.{column}"
        for table, wanted in CONTRACT.items()
        for column in wanted | {"id"}
        if (table, column) not in columns
    )
    assert missing == []


# HubSpot's and Airflow's ids are text
NOT_LEDGER_IDS = {"remote_id", "dag_run_id", "portal_id"}


def test_ids_and_references_are_bigint(columns: dict[tuple[str, str], str]) -> None:
    wrong = {
        key: kind for key, kind in columns.items()
        if (key[1] == "id" or key[1].endswith("_id") and key[1] not in NOT_LEDGER_IDS)
        and kind != "bigint"
    }
    assert wrong == {}


def test_money_and_quantities_are_numeric(columns: dict[tuple[str, str], str]) -> None:
    assert {key: columns[key] for key in MONEY_AND_QUANTITIES} == dict.fromkeys(
        MONEY_AND_QUANTITIES, "numeric"
    )


def test_no_floating_point_anywhere(columns: dict[tuple[str, str], str]) -> None:
    assert [key for key, kind in columns.items() if kind in {"real", "double precision"}] == []


def test_dates_and_timestamps(columns: dict[tuple[str, str], str]) -> None:
    assert {columns[key] for key in DATES} == {"date"}
    assert {columns[key] for key in TIMESTAMPS} == {"timestamp with time zone"}


def test_token_columns_exist(columns: dict[tuple[str, str], str]) -> None:
    for column in ("access_token", "refresh_token", "scope"):
        assert columns["integrations", column] == "text"
    assert columns["integrations", "expires_in"] == "integer"
    assert columns["sync_runs", "counts"] == "jsonb"


def test_additive_columns(columns: dict[tuple[str, str], str]) -> None:
    assert columns["integrations", "schedule"] == "text"
    assert columns["integration_records", "fingerprint"] == "text"
    assert columns["sync_runs", "dag_run_id"] == "text"
    assert columns["sync_runs", "message"] == "text"


def _check_words(conn: psycopg.Connection[Any], table: str, column: str) -> set[str]:
    """The words the single-column IN-list check on table.column allows."""
    definitions = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
        "WHERE c.contype = 'c' AND c.conrelid = %s::regclass AND a.attname = %s "
        "AND cardinality(c.conkey) = 1",
        [f"ledger.{table}", column],
    ).fetchall()
    assert len(definitions) == 1, definitions
    return set(re.findall(r"'([a-z_]+)'::text", definitions[0][0]))


@pytest.mark.parametrize(("table", "column", "vocabulary"), VOCABULARIES)
def test_check_constraints_match_the_python_vocabularies(
    ledger_db: str, table: str, column: str, vocabulary: type[StrEnum]
) -> None:
    with psycopg.connect(ledger_db) as conn:
        assert _check_words(conn, table, column) == {v.value for v in vocabulary}


def test_local_table_only_names_ledger_tables(ledger_db: str) -> None:
    with psycopg.connect(ledger_db) as conn:
        words = _check_words(conn, "integration_records", "local_table")
    assert words and words <= CONTRACT.keys()
