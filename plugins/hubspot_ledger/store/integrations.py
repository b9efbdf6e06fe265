"""Integrations (and their organizations): create, list, read, status, a connect's tokens."""

from __future__ import annotations

import datetime as dt
import math
import time
from contextlib import closing
from typing import Any

import psycopg

from hubspot_ledger.load.errors import LedgerUnavailableError, NotFoundError, first_line
from hubspot_ledger.load.records import (
    Integration,
    IntegrationStatus,
    IntegrationSummary,
    Provider,
    TokenUpdate,
)
from hubspot_ledger.store.base import Repository, scalar, schema_errors

# libpq counts connect_timeout in whole seconds and treats anything under 2 as 2.
_MIN_CONNECT_TIMEOUT = 2

_COLUMNS = (
    "i.id, i.organization_id, o.name, i.status, i.status_message, i.remote_id, i.currency, "
    "i.ui_domain, i.cutoff_date, i.schedule, i.expires_in, i.scope, i.token_created_at, "
    "i.access_token, i.refresh_token"
)


def _integration(row: Any) -> Integration:
    return Integration(
        id=row[0], organization_id=row[1], organization_name=row[2],
        status=IntegrationStatus(row[3]), status_message=row[4], remote_id=row[5],
        currency=row[6], ui_domain=row[7], cutoff_date=row[8], schedule=row[9],
        expires_in=row[10], scope=row[11], token_created_at=row[12], access_token=row[13],
        refresh_token=row[14],
    )


def _summary(row: Any) -> IntegrationSummary:
    return IntegrationSummary(
        id=row[0], organization_id=row[1], organization_name=row[2],
        status=IntegrationStatus(row[3]), schedule=row[4], cutoff_date=row[5])


def select_integration(conn: psycopg.Connection[Any], integration_id: int,
                       *, for_update: bool = False) -> Integration:
    lock = " FOR UPDATE OF i" if for_update else ""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM ledger.integrations i "  # noqa: S608
        f"JOIN ledger.organizations o ON o.id = i.organization_id WHERE i.id = %s{lock}",
        [integration_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(f"integration {integration_id} does not exist")
    return _integration(row)


class Integrations(Repository):
    def create(self, organization_name: str, cutoff_date: dt.date) -> int:
        """Create a disconnected HubSpot integration (and its organization if new); return its id.

        The organization is matched by exact name (surrounding blanks ignored). The integration,
        its settings row (invoice sync off) and a new organization commit together or not at all.
        """
        name = organization_name.strip()
        if not name:
            raise ValueError("organization name must not be empty")
        if isinstance(cutoff_date, dt.datetime) or not isinstance(cutoff_date, dt.date):
            raise TypeError(f"cutoff_date must be a date, not {type(cutoff_date).__name__}")
        with self._session() as conn, conn.transaction():
            # DO NOTHING + SELECT: under concurrency the second creator waits for the first
            # and then reads its row, instead of failing on the unique name.
            conn.execute(
                "INSERT INTO ledger.organizations (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                [name],
            )
            org = scalar(conn.execute("SELECT id FROM ledger.organizations WHERE name = %s",
                                      [name]))
            assert org is not None  # inserted or already there, in this very transaction
            integration_id = scalar(conn.execute(
                "INSERT INTO ledger.integrations (organization_id, provider, status, cutoff_date) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [org, Provider.HUBSPOT.value, IntegrationStatus.DISCONNECTED.value, cutoff_date],
            ))
            conn.execute(
                "INSERT INTO ledger.integration_settings "
                "(organization_id, integration_id, sync_invoices) VALUES (%s, %s, false)",
                [org, integration_id],
            )
            return int(integration_id)

    def list(self, timeout_seconds: float = 3.0) -> list[IntegrationSummary]:
        """Every HubSpot integration, by id: the DAG factory's one read at parse time.

        Bounded twice: the connection gives up after `timeout_seconds` (rounded up, at least the
        2 s libpq allows) and the query gets what is left of the budget as its statement_timeout.
        Either way out raises `LedgerUnavailableError`. A connection of its own, on purpose: the
        hook's may have been opened without a connect time-out, and parsing must never hang.
        """
        deadline = time.monotonic() + timeout_seconds
        connect_timeout = max(_MIN_CONNECT_TIMEOUT, math.ceil(timeout_seconds))
        bounded = self._ledger.new_connection(connect_timeout=connect_timeout)
        with closing(bounded) as conn, schema_errors(), conn.transaction():
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{remaining_ms}ms"])
            try:
                rows = conn.execute(
                    "SELECT i.id, i.organization_id, o.name, i.status, i.schedule, i.cutoff_date "
                    "FROM ledger.integrations i "
                    "JOIN ledger.organizations o ON o.id = i.organization_id "
                    "WHERE i.provider = %s ORDER BY i.id",
                    [Provider.HUBSPOT.value],
                ).fetchall()
            except psycopg.errors.QueryCanceled as exc:
                # Same meaning for the DAG factory as a refused connection: serve the cached list.
                raise LedgerUnavailableError(
                    f"the ledger did not answer within {timeout_seconds:g}s ({first_line(exc)})"
                ) from exc
        return [_summary(r) for r in rows]

    def get(self, integration_id: int) -> Integration:
        with self._session() as conn:
            return select_integration(conn, integration_id)

    def set_status(self, integration_id: int, status: IntegrationStatus,
                   message: str | None = None, *,
                   unless: IntegrationStatus | None = None) -> bool:
        """Set status and message; with `unless`, only if the status is not that one now (one
        statement, so a concurrent change cannot slip in between). True if it was set."""
        with self._session() as conn:
            row = conn.execute(
                "UPDATE ledger.integrations SET status = CASE WHEN status = %(unless)s "
                "THEN status ELSE %(status)s END, status_message = CASE WHEN status = "
                "%(unless)s THEN status_message ELSE %(message)s END WHERE id = %(id)s "
                "RETURNING status = %(status)s AND status_message IS NOT DISTINCT FROM "
                "%(message)s",
                {"status": status.value, "message": message, "id": integration_id,
                 "unless": unless.value if unless is not None else None},
            ).fetchone()
        if row is None:
            raise NotFoundError(f"integration {integration_id} does not exist")
        return bool(row[0])

    def store_connection(self, integration_id: int, tokens: TokenUpdate, *, remote_id: str,
                         currency: str | None, ui_domain: str) -> str | None:
        """Tokens (ciphertext) and portal details of a successful connect, status connected.

        One portal per integration (DESIGN): the portal id is fixed by the first connection,
        so this stores nothing when the integration is already connected to another portal
        and returns that portal's id instead (None: stored). An empty `tokens.scope` keeps the
        stored scope (HubSpot could not say which scopes it granted).
        """
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE ledger.integrations SET access_token = %s, refresh_token = %s, "
                "expires_in = %s, scope = COALESCE(NULLIF(%s, ''), scope), "
                "token_created_at = %s, remote_id = %s, currency = %s, ui_domain = %s, "
                "status = %s, status_message = NULL "
                "WHERE id = %s AND (remote_id IS NULL OR remote_id = %s) RETURNING id",
                [tokens.access_token, tokens.refresh_token, tokens.expires_in, tokens.scope,
                 tokens.token_created_at, remote_id, currency, ui_domain,
                 IntegrationStatus.CONNECTED.value, integration_id, remote_id],
            ).fetchone()
            if row is not None:
                return None
            pinned = scalar(conn.execute(
                "SELECT remote_id FROM ledger.integrations WHERE id = %s", [integration_id]))
        if pinned is None:
            raise NotFoundError(f"integration {integration_id} does not exist")
        return str(pinned)

    def for_user(self, integration_id: int, username: str
                 ) -> tuple[IntegrationSummary, str | None] | None:
        """The HubSpot integration and `username`'s role in its organization (None: not a
        member), in one read; None when the integration does not exist."""
        with self._session() as conn:
            row = conn.execute(
                "SELECT i.id, i.organization_id, o.name, i.status, i.schedule, i.cutoff_date, "
                "m.role FROM ledger.integrations i "
                "JOIN ledger.organizations o ON o.id = i.organization_id "
                "LEFT JOIN ledger.organization_members m "
                "ON m.organization_id = i.organization_id AND m.username = %s "
                "WHERE i.id = %s AND i.provider = %s",
                [username, integration_id, Provider.HUBSPOT.value],
            ).fetchone()
        return None if row is None else (_summary(row), row[6])
