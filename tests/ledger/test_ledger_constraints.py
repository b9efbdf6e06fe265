"""The schema itself refuses what must never be in the ledger, whatever the code above it does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from .helpers import Org, add_contract, one

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[Any]
OrgFactory = Callable[[str], Org]


def add_record(conn: Conn, integration_id: int, remote_type: str, remote_id: str,
               local_table: str, local_id: int) -> None:
    conn.execute(
        "INSERT INTO ledger.integration_records "
        "(integration_id, remote_type, remote_id, local_table, local_id) "
        "VALUES (%s, %s, %s, %s, %s)",
        [integration_id, remote_type, remote_id, local_table, local_id],
    )


def add_item(conn: Conn, organization_id: int, sku: str) -> int:
    return one(
        conn,
        "INSERT INTO ledger.items (organization_id, sku, name, item_type) "
        "VALUES (%s, %s, 'Widget', 'goods') RETURNING id",
        [organization_id, sku],
    )


# --- one ledger row per remote record ---------------------------------------------------------

def test_one_integration_record_per_remote_record(ledger: Conn, org_factory: OrgFactory) -> None:
    acme = org_factory("Acme")
    add_record(ledger, acme.integration_id, "product", "101", "items", acme.item_id)
    with pytest.raises(errors.UniqueViolation):
        add_record(ledger, acme.integration_id, "product", "101", "items", acme.item_id)


def test_same_remote_id_is_fine_for_another_type_or_integration(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    add_record(ledger, acme.integration_id, "product", "101", "items", acme.item_id)
    add_record(ledger, acme.integration_id, "company", "101", "customers", acme.customer_id)
    add_record(ledger, globex.integration_id, "product", "101", "items", globex.item_id)
    rows = ledger.execute(
        "SELECT integration_id, remote_type, local_table, local_id "
        "FROM ledger.integration_records WHERE remote_id = '101' ORDER BY id").fetchall()
    assert rows == [(acme.integration_id, "product", "items", acme.item_id),
                    (acme.integration_id, "company", "customers", acme.customer_id),
                    (globex.integration_id, "product", "items", globex.item_id)]


def test_remote_type_must_map_to_its_own_table(ledger: Conn, org_factory: OrgFactory) -> None:
    acme = org_factory("Acme")
    with pytest.raises(errors.CheckViolation):
        add_record(ledger, acme.integration_id, "deal", "7", "items", acme.item_id)


def test_sku_is_unique_per_organization_only(ledger: Conn, org_factory: OrgFactory) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    add_item(ledger, acme.id, "HS_42")
    add_item(ledger, globex.id, "HS_42")
    with pytest.raises(errors.UniqueViolation):
        add_item(ledger, acme.id, "HS_42")


def test_account_code_is_unique_per_organization_only(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme = org_factory("Acme")
    org_factory("Globex")  # has its own account 4000
    with pytest.raises(errors.UniqueViolation):
        ledger.execute(
            "INSERT INTO ledger.accounts (organization_id, code, name, account_type) "
            "VALUES (%s, '4000', 'Other revenue', 'income')",
            [acme.id],
        )


def test_organization_name_is_unique_and_not_blank(ledger: Conn, org_factory: OrgFactory) -> None:
    org_factory("Acme")
    with pytest.raises(errors.UniqueViolation):
        ledger.execute("INSERT INTO ledger.organizations (name) VALUES ('Acme')")
    with pytest.raises(errors.CheckViolation):
        ledger.execute("INSERT INTO ledger.organizations (name) VALUES ('  ')")


# --- enumerations ---------------------------------------------------------------------------

ENUM_COLUMNS = [
    ("integrations", "status"),
    ("integrations", "provider"),
    ("customers", "customer_type"),
    ("items", "item_type"),
    ("contracts", "status"),
    ("performance_obligations", "recognition_strategy"),
    ("accounts", "account_type"),
    ("sync_runs", "status"),
    ("integration_records", "remote_type"),
    ("integration_records", "local_table"),
    ("integration_errors", "remote_type"),
]


@pytest.fixture
def one_of_everything(ledger: Conn, org_factory: OrgFactory) -> Org:
    """A row in every table an enumeration lives in."""
    acme = org_factory("Acme")
    contract = add_contract(ledger, acme)
    ledger.execute(
        "INSERT INTO ledger.performance_obligations (organization_id, contract_id, item_id, "
        "quantity, unit_price, amount) VALUES (%s, %s, %s, 1, 100, 100)",
        [acme.id, contract, acme.item_id],
    )
    run = one(
        ledger, "INSERT INTO ledger.sync_runs (integration_id) VALUES (%s) RETURNING id",
        [acme.integration_id],
    )
    add_record(ledger, acme.integration_id, "deal", "9", "contracts", contract)
    ledger.execute(
        "INSERT INTO ledger.integration_errors (integration_id, sync_run_id, remote_type, "
        "remote_id, message) VALUES (%s, %s, 'deal', '10', 'No valid line items')",
        [acme.integration_id, run],
    )
    return acme


@pytest.mark.parametrize(("table", "column"), ENUM_COLUMNS)
def test_unknown_enumeration_values_are_rejected(
    ledger: Conn, one_of_everything: Org, table: str, column: str
) -> None:
    with pytest.raises(errors.CheckViolation):
        ledger.execute(
            sql.SQL("UPDATE {} SET {} = 'bogus'").format(
                sql.Identifier("ledger", table), sql.Identifier(column)
            )
        )


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("contracts", "currency", "usd"),
        ("performance_obligations", "discount_percent", "100.5"),
        ("performance_obligations", "quantity", "-1"),
        ("performance_obligations", "discount_amount", "-5"),
        ("sync_runs", "counts", "[]"),
        ("integrations", "expires_in", "-1"),
        ("integration_records", "remote_id", ""),
    ],
)
def test_out_of_range_values_are_rejected(
    ledger: Conn, one_of_everything: Org, table: str, column: str, value: str
) -> None:
    with pytest.raises(errors.CheckViolation):
        ledger.execute(
            sql.SQL("UPDATE {} SET {} = %s").format(
                sql.Identifier("ledger", table), sql.Identifier(column)
            ),
            [value],
        )


def test_absurd_amounts_overflow_instead_of_being_stored(
    ledger: Conn, one_of_everything: Org
) -> None:
    with pytest.raises(errors.NumericValueOutOfRange):
        ledger.execute("UPDATE ledger.contracts SET total_amount = 1e20")


def test_a_finished_run_needs_a_finish_time(ledger: Conn, one_of_everything: Org) -> None:
    with pytest.raises(errors.CheckViolation):
        ledger.execute("UPDATE ledger.sync_runs SET status = 'success'")
    ledger.execute("UPDATE ledger.sync_runs SET status = 'success', finished_at = now()")


# --- tenant safety --------------------------------------------------------------------------

def test_contract_cannot_point_at_another_organizations_customer(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    with pytest.raises(errors.ForeignKeyViolation):
        add_contract(ledger, acme, customer_id=globex.customer_id)


def test_obligation_cannot_use_another_organizations_item(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    contract = add_contract(ledger, acme)
    with pytest.raises(errors.ForeignKeyViolation):
        ledger.execute(
            "INSERT INTO ledger.performance_obligations (organization_id, contract_id, item_id, "
            "quantity, unit_price, amount) VALUES (%s, %s, %s, 1, 1, 1)",
            [acme.id, contract, globex.item_id],
        )


def test_invoice_cannot_use_another_organizations_company(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    with pytest.raises(errors.ForeignKeyViolation):
        ledger.execute(
            "INSERT INTO ledger.invoices (organization_id, company_id, customer_id, invoice_date, "
            "due_date, currency) VALUES (%s, %s, %s, '2025-01-01', '2025-01-31', 'USD')",
            [acme.id, globex.company_id, acme.customer_id],
        )


def test_settings_and_items_cannot_use_another_organizations_account(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    with pytest.raises(errors.ForeignKeyViolation):
        ledger.execute(
            "UPDATE ledger.integration_settings SET income_account_id = %s "
            "WHERE integration_id = %s",
            [globex.account_id, acme.integration_id],
        )
    with pytest.raises(errors.ForeignKeyViolation):
        ledger.execute(
            "UPDATE ledger.items SET expense_account_id = %s WHERE id = %s",
            [globex.account_id, acme.item_id],
        )


def test_deleting_a_configured_account_clears_only_that_setting(
    ledger: Conn, org_factory: OrgFactory
) -> None:
    acme = org_factory("Acme")
    clearing = one(
        ledger,
        "INSERT INTO ledger.accounts (organization_id, code, name, account_type) "
        "VALUES (%s, '1999', 'Clearing', 'asset') RETURNING id",
        [acme.id],
    )
    ledger.execute(
        "UPDATE ledger.integration_settings SET clearing_account_id = %s", [clearing]
    )
    ledger.execute("DELETE FROM ledger.accounts WHERE id = %s", [clearing])
    row = ledger.execute(
        "SELECT organization_id, ar_account_id, clearing_account_id, company_id "
        "FROM ledger.integration_settings WHERE integration_id = %s",
        [acme.integration_id],
    ).fetchone()
    assert row == (acme.id, acme.account_id, None, acme.company_id)


# --- placeholders ---------------------------------------------------------------------------

def _placeholder_customer(conn: Conn, organization_id: int) -> None:
    conn.execute(
        "INSERT INTO ledger.customers (organization_id, name, customer_type, is_placeholder) "
        "VALUES (%s, 'Unknown', 'company', true)",
        [organization_id],
    )


def test_one_placeholder_customer_per_organization(ledger: Conn, org_factory: OrgFactory) -> None:
    acme, globex = org_factory("Acme"), org_factory("Globex")
    _placeholder_customer(ledger, acme.id)
    _placeholder_customer(ledger, globex.id)
    with pytest.raises(errors.UniqueViolation):
        _placeholder_customer(ledger, acme.id)


def test_one_placeholder_company_per_organization(ledger: Conn, org_factory: OrgFactory) -> None:
    acme = org_factory("Acme")
    ledger.execute(
        "INSERT INTO ledger.companies (organization_id, name, is_placeholder) "
        "VALUES (%s, 'Unknown', true)",
        [acme.id],
    )
    with pytest.raises(errors.UniqueViolation):
        ledger.execute(
            "INSERT INTO ledger.companies (organization_id, name, is_placeholder) "
            "VALUES (%s, 'Unknown 2', true)",
            [acme.id],
        )


# --- bookkeeping columns --------------------------------------------------------------------

def test_updated_at_moves_only_on_a_real_change(ledger: Conn, org_factory: OrgFactory) -> None:
    acme = org_factory("Acme")

    def stamp() -> Any:
        row = ledger.execute(
            "SELECT updated_at FROM ledger.customers WHERE id = %s", [acme.customer_id]
        ).fetchone()
        assert row is not None
        return row[0]

    def update(statement: str) -> Any:
        """Run the update in a transaction of its own; that transaction's now()."""
        with ledger.transaction():
            ledger.execute(statement, [acme.customer_id])
            row = ledger.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0]

    created = stamp()
    update("UPDATE ledger.customers SET name = name WHERE id = %s")
    assert stamp() == created
    changed_at = update("UPDATE ledger.customers SET city = 'Oslo' WHERE id = %s")
    assert stamp() == changed_at  # the trigger's now(): the changing transaction's time


def test_obligations_go_with_their_contract(ledger: Conn, one_of_everything: Org) -> None:
    ledger.execute("DELETE FROM ledger.contracts")
    row = ledger.execute("SELECT count(*) FROM ledger.performance_obligations").fetchone()
    assert row == (0,)


# --- one portal per integration (issue 13; DESIGN "one portal per integration") ---------------

def test_an_integrations_portal_never_changes_once_connected(ledger: Conn,
                                                             org_factory: OrgFactory) -> None:
    acme = org_factory("Acme")
    ledger.execute("UPDATE ledger.integrations SET remote_id = '62515' WHERE id = %s",
                   [acme.integration_id])
    ledger.execute("UPDATE ledger.integrations SET remote_id = '62515', status = 'connected' "
                   "WHERE id = %s", [acme.integration_id])  # the same portal reconnects
    with pytest.raises(errors.CheckViolation, match="create a new integration for portal 99999"):
        ledger.execute("UPDATE ledger.integrations SET remote_id = '99999' WHERE id = %s",
                       [acme.integration_id])
    with pytest.raises(errors.CheckViolation):
        ledger.execute("UPDATE ledger.integrations SET remote_id = NULL WHERE id = %s",
                       [acme.integration_id])


def test_void_is_a_status_of_contracts_and_invoices(ledger: Conn, org_factory: OrgFactory
                                                    ) -> None:
    acme = org_factory("Acme")
    contract = add_contract(ledger, acme)
    ledger.execute("UPDATE ledger.contracts SET status = 'void' WHERE id = %s", [contract])
    with pytest.raises(errors.CheckViolation):
        ledger.execute("UPDATE ledger.contracts SET status = 'deleted' WHERE id = %s",
                       [contract])
