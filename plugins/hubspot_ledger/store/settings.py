"""Integration settings (R-SET-1..3) and the accounts and companies they name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from hubspot_ledger.load.errors import NotFoundError
from hubspot_ledger.load.records import (
    ACCOUNT_SETTINGS,
    AccountType,
    IntegrationSettings,
    InvoiceParties,
    Recognition,
)
from hubspot_ledger.store.base import Repository, scalar

# Issue 14's settings: columns of the same name.
BEYOND_SETTINGS = ("invoice_parties", "won_stages", "recognition")


class Settings(Repository):
    def get(self, integration_id: int) -> IntegrationSettings:
        """Settings with accounts by code and the company by name (None: unset or deleted)."""
        joins = " ".join(
            f"LEFT JOIN ledger.accounts a{n} ON a{n}.id = s.{col}"
            for n, col in enumerate(ACCOUNT_SETTINGS)
        )
        codes = ", ".join(f"a{n}.code" for n in range(len(ACCOUNT_SETTINGS)))
        ids = ", ".join(f"s.{col}" for col in ACCOUNT_SETTINGS)
        with self._session() as conn:
            row = conn.execute(
                f"SELECT s.organization_id, {codes}, c.name, s.sync_invoices, {ids}, "  # noqa: S608
                f"s.company_id, s.invoice_parties, s.won_stages, s.recognition "
                f"FROM ledger.integration_settings s {joins} "
                "LEFT JOIN ledger.companies c ON c.id = s.company_id "
                "WHERE s.integration_id = %s",
                [integration_id],
            ).fetchone()
        if row is None:
            raise NotFoundError(f"integration {integration_id} does not exist")
        n = len(ACCOUNT_SETTINGS)
        return IntegrationSettings(
            integration_id=integration_id, organization_id=row[0], ar_account=row[1],
            deferred_revenue_account=row[2], expense_account=row[3], income_account=row[4],
            clearing_account=row[5], company=row[n + 1], sync_invoices=bool(row[n + 2]),
            ids={**dict(zip(ACCOUNT_SETTINGS, row[n + 3:n + 3 + n], strict=True)),
                 "company_id": row[n + 3 + n]},
            invoice_parties=InvoiceParties(row[-3]), won_stages=str(row[-2]),
            recognition=Recognition(row[-1]),
        )

    def update(self, integration_id: int, values: dict[str, Any]) -> None:
        """Write settings columns (ids already resolved in the integration's organization)."""
        allowed = {*ACCOUNT_SETTINGS, "company_id", "sync_invoices", *BEYOND_SETTINGS}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not a settings column: {', '.join(sorted(unknown))}")
        if not values:
            return
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder()) for col in values
        )
        with self._session() as conn:
            conn.execute(
                sql.SQL("UPDATE ledger.integration_settings SET {} WHERE integration_id = %s"
                        ).format(assignments),
                [*values.values(), integration_id],
            )

    def account_types(self, organization_id: int, codes: Sequence[str]
                      ) -> dict[str, tuple[int, AccountType]]:
        """Accounts of the organization by code: code → (id, type)."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT code, id, account_type FROM ledger.accounts WHERE organization_id = %s "
                "AND code = ANY(%s)", [organization_id, list(codes)],
            ).fetchall()
        return {code: (int(id_), AccountType(kind)) for code, id_, kind in rows}

    def company_id(self, organization_id: int, name: str) -> int | None:
        with self._session() as conn:
            found = scalar(conn.execute(
                "SELECT id FROM ledger.companies WHERE organization_id = %s AND name = %s "
                "AND NOT is_placeholder", [organization_id, name]))
        return None if found is None else int(found)

    # Accounting entities are seeded by the accounting product; these are for demo and tests.

    def create_account(self, organization_id: int, code: str, name: str,
                       account_type: AccountType) -> int:
        with self._session() as conn:
            return int(scalar(conn.execute(
                "INSERT INTO ledger.accounts (organization_id, code, name, account_type) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [organization_id, code, name, account_type.value])))

    def create_company(self, organization_id: int, name: str, currency: str) -> int:
        with self._session() as conn:
            return int(scalar(conn.execute(
                "INSERT INTO ledger.companies (organization_id, name, currency) "
                "VALUES (%s, %s, %s) RETURNING id", [organization_id, name, currency])))
