"""Helpers of the ledger tests: connections through the hook and a small populated ledger."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from hubspot_ledger.hooks.ledger import LedgerHook


def connect(database: str) -> psycopg.Connection[Any]:
    """An autocommit connection to `database` on the test server, through the hook."""
    conn = LedgerHook(database=database).get_conn()
    assert isinstance(conn, psycopg.Connection)
    conn.autocommit = True
    return conn


def admin() -> psycopg.Connection[Any]:
    """An autocommit connection to the maintenance DB of the test server."""
    return connect("postgres")


def drop_database(name: str) -> None:
    with admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass
class Org:
    """One organization with the rows most tests point at."""

    id: int
    company_id: int
    account_id: int
    customer_id: int
    item_id: int
    integration_id: int


def one(conn: psycopg.Connection[Any], query: str, params: list[Any]) -> int:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return int(row[0])


def make_org(conn: psycopg.Connection[Any], name: str) -> Org:
    """An organization with a company, an account, a customer, an item and an integration."""
    org = one(conn, "INSERT INTO ledger.organizations (name) VALUES (%s) RETURNING id", [name])
    company = one(
        conn,
        "INSERT INTO ledger.companies (organization_id, name, currency) "
        "VALUES (%s, 'Main entity', 'USD') RETURNING id",
        [org],
    )
    account = one(
        conn,
        "INSERT INTO ledger.accounts (organization_id, code, name, account_type) "
        "VALUES (%s, '4000', 'Revenue', 'income') RETURNING id",
        [org],
    )
    customer = one(
        conn,
        "INSERT INTO ledger.customers (organization_id, name, customer_type) "
        "VALUES (%s, 'Globex', 'company') RETURNING id",
        [org],
    )
    item = one(
        conn,
        "INSERT INTO ledger.items (organization_id, sku, name, item_type, income_account_id) "
        "VALUES (%s, 'SKU-1', 'Consulting', 'service', %s) RETURNING id",
        [org, account],
    )
    integration = one(
        conn,
        "INSERT INTO ledger.integrations (organization_id, cutoff_date) VALUES (%s, %s) "
        "RETURNING id",
        [org, dt.date(2025, 1, 1)],
    )
    conn.execute(
        "INSERT INTO ledger.integration_settings (organization_id, integration_id, ar_account_id, "
        "company_id) VALUES (%s, %s, %s, %s)",
        [org, integration, account, company],
    )
    return Org(org, company, account, customer, item, integration)


def add_contract(conn: psycopg.Connection[Any], org: Org, customer_id: int | None = None) -> int:
    return one(
        conn,
        "INSERT INTO ledger.contracts (organization_id, company_id, customer_id, name, currency, "
        "contract_date, total_amount) VALUES (%s, %s, %s, 'Deal 1', 'USD', '2025-02-01', 100) "
        "RETURNING id",
        [org.id, org.company_id, customer_id or org.customer_id],
    )
