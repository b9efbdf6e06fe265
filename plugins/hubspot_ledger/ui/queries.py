"""The ledger reads of the operator page that no service function offers: the organization's
accounts and companies (the settings form's choices), open problems with the time each record
first failed, and the integration's contracts and invoices for the reconciliation.

Each takes an open psycopg connection (the caller owns it): read-only, one statement each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from hubspot_ledger.load.records import ProblemCause
from hubspot_ledger.maps import currency_minor_units
from hubspot_ledger.reconcile import LedgerDocument


@dataclass(frozen=True)
class Choice:
    value: str  # what the settings service takes: an account's code, a company's name
    label: str
    kind: str  # account type, or the company's currency


@dataclass(frozen=True)
class OpenProblem:
    remote_type: str | None
    remote_id: str | None
    message: str
    first_failed: dt.datetime
    last_seen: dt.datetime | None
    cause: str | None = None  # ProblemCause's words; None: older than migration 0019

    @property
    def retried(self) -> str:
        """When the sync reads the record again (issue 12)."""
        return ("when it changes in HubSpot" if self.cause == ProblemCause.HUBSPOT
                else "every run")


def accounts(conn: psycopg.Connection[Any], organization_id: int) -> list[Choice]:
    rows = conn.execute(
        "SELECT code, name, account_type FROM ledger.accounts WHERE organization_id = %s "
        "ORDER BY code", [organization_id]).fetchall()
    return [Choice(str(code), f"{code} {name}", str(kind)) for code, name, kind in rows]


def companies(conn: psycopg.Connection[Any], organization_id: int) -> list[Choice]:
    """The accounting entities an accountant can pick (not the "Unknown" placeholder)."""
    rows = conn.execute(
        "SELECT name, currency FROM ledger.companies WHERE organization_id = %s "
        "AND NOT is_placeholder ORDER BY name", [organization_id]).fetchall()
    return [Choice(str(name), str(name), str(currency or "")) for name, currency in rows]


def open_problems(conn: psycopg.Connection[Any], integration_id: int, limit: int = 500
                  ) -> list[OpenProblem]:
    """Records that still fail, oldest failure first. An entry stays open (one row, its
    `created_at` kept) while the record fails with the same message (load/problems.py), so
    `created_at` is when it first failed."""
    rows = conn.execute(
        "SELECT remote_type, remote_id, message, created_at, last_seen_at, cause "
        "FROM ledger.integration_errors WHERE integration_id = %s AND resolved_at IS NULL "
        "ORDER BY created_at, id LIMIT %s", [integration_id, limit]).fetchall()
    return [OpenProblem(*row) for row in rows]


def _documents(conn: psycopg.Connection[Any], integration_id: int, remote_type: str,
               table: str, date_column: str, name_column: str) -> list[LedgerDocument]:
    query = (f"SELECT r.remote_id, d.{name_column}, d.status, d.{date_column}, d.currency, "
             f"d.total_amount FROM ledger.integration_records r "
             f"JOIN ledger.{table} d ON d.id = r.local_id "
             "WHERE r.integration_id = %s AND r.remote_type = %s AND r.local_table = %s")
    rows = conn.execute(query, [integration_id, remote_type, table]).fetchall()
    return [LedgerDocument(remote_id=str(rid), name=str(name or ""), status=str(status),
                           date=day, currency=str(currency or ""),
                           total=_in_minor_units(Decimal(total or 0), str(currency or "")))
            for rid, name, status, day, currency, total in rows]


def _in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """The stored total (numeric with spare places) at its currency's places, as HubSpot
    writes it: the totals are sums of amounts already rounded to them (DESIGN "obligation
    money"), so this only drops trailing zeros."""
    places = currency_minor_units().get(currency.upper())
    return amount if places is None else amount.quantize(Decimal(1).scaleb(-places))


def contracts(conn: psycopg.Connection[Any], integration_id: int) -> list[LedgerDocument]:
    return _documents(conn, integration_id, "deal", "contracts", "contract_date", "name")


def invoices(conn: psycopg.Connection[Any], integration_id: int) -> list[LedgerDocument]:
    return _documents(conn, integration_id, "invoice", "invoices", "invoice_date", "number")
