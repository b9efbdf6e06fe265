"""`LedgerHook`: the ledger's I/O, on the Postgres provider's hook (connection `ledger_default`).

No business rules here: the map layer decides what to write, this hook writes it (DESIGN.md,
"Data flow", load layer). Every connection comes from the provider hook's `get_conn()`, so the
Airflow connection (and its extras: sslmode, …) is the one source of where the ledger is.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook
from psycopg import sql

from hubspot_ledger.config import LEDGER_CONN_ID, MIGRATIONS_DIR
from hubspot_ledger.ledger import migrations
from hubspot_ledger.ledger.errors import LedgerSchemaError, LedgerUnavailableError, first_line
from hubspot_ledger.ledger.records import IntegrationStatus, IntegrationSummary, Provider

# libpq counts connect_timeout in whole seconds and treats anything under 2 as 2.
_MIN_CONNECT_TIMEOUT = 2
_MAINTENANCE_DB = "postgres"


class LedgerHook(PostgresHook):
    """Reads and writes the ledger schema of DESIGN.md; see the module docstring."""

    conn_name_attr = "ledger_conn_id"
    default_conn_name = LEDGER_CONN_ID
    conn_type = "postgres"
    hook_name = "HubSpot Ledger"

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = self.get_conn()
        except psycopg.OperationalError as exc:
            reason = first_line(exc).removeprefix("connection failed: ")
            raise LedgerUnavailableError(
                f"cannot connect to the ledger (connection {self.get_conn_id()!r}): {reason}"
            ) from exc
        # The provider falls back to psycopg2 without SQLAlchemy 2; this hook uses psycopg 3 APIs.
        if not isinstance(conn, psycopg.Connection):
            conn.close()
            raise RuntimeError("LedgerHook needs psycopg 3 (the provider chose psycopg2)")
        return conn

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection closed on exit; a missing schema becomes an error that says what to do."""
        with closing(self._connect()) as conn:
            try:
                yield conn
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
                raise LedgerSchemaError(
                    f"the ledger schema is missing or out of date ({first_line(exc)}); "
                    "run `hubspot-ledger migrate`"
                ) from exc

    def _sibling(self, *, database: str | None = None, connect_timeout: int | None = None,
                 ) -> LedgerHook:
        """The same Airflow connection, pointed at another database or with a connect time-out."""
        connection = copy.deepcopy(self.connection)
        if connect_timeout is not None:
            connection.extra = json.dumps(
                {**connection.extra_dejson, "connect_timeout": connect_timeout}
            )
        return LedgerHook(
            ledger_conn_id=self.get_conn_id(),
            connection=connection,
            database=database or self.database,
        )

    # --- schema -------------------------------------------------------------------------------

    def migrate(self, create_database: bool = False) -> list[str]:
        """Apply pending migrations; return the versions applied ([] when up to date).

        With `create_database`, first create the ledger database if the server lacks it, so
        `hubspot-ledger migrate` works on a fresh server.
        """
        if create_database:
            self._ensure_database()
        with self._session() as conn:
            return migrations.migrate(conn, MIGRATIONS_DIR)

    def _ensure_database(self) -> None:
        name = self.database or self.connection.schema
        if not name:
            raise ValueError(f"connection {self.get_conn_id()!r} names no database")
        try:
            # The usual case costs one connection and needs no rights on the maintenance DB.
            self._connect().close()
            return
        except LedgerUnavailableError:
            pass  # missing database, or a server that is down: the maintenance DB tells which
        with closing(self._sibling(database=_MAINTENANCE_DB)._connect()) as admin:
            admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if found:
                return
            try:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                self.log.info("Created ledger database %s", name)
            except psycopg.errors.DuplicateDatabase:
                pass  # a concurrent migrate created it first: that is what we wanted

    # --- integrations -------------------------------------------------------------------------

    def create_integration(self, organization_name: str, cutoff_date: dt.date) -> int:
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
            org = conn.execute(
                "SELECT id FROM ledger.organizations WHERE name = %s", [name]
            ).fetchone()
            assert org is not None  # inserted or already there, in this very transaction
            row = conn.execute(
                "INSERT INTO ledger.integrations (organization_id, provider, status, cutoff_date) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [org[0], Provider.HUBSPOT.value, IntegrationStatus.DISCONNECTED.value,
                 cutoff_date],
            ).fetchone()
            assert row is not None
            conn.execute(
                "INSERT INTO ledger.integration_settings "
                "(organization_id, integration_id, sync_invoices) VALUES (%s, %s, false)",
                [org[0], row[0]],
            )
            return int(row[0])

    def list_integrations(self, timeout_seconds: float = 3.0) -> list[IntegrationSummary]:
        """Every HubSpot integration, by id: the DAG factory's one read at parse time.

        Bounded twice: the connection gives up after `timeout_seconds` (rounded up, at least the
        2 s libpq allows) and the query gets what is left of the budget as its statement_timeout.
        Either way out raises `LedgerUnavailableError`.
        """
        deadline = time.monotonic() + timeout_seconds
        connect_timeout = max(_MIN_CONNECT_TIMEOUT, math.ceil(timeout_seconds))
        bounded = self._sibling(connect_timeout=connect_timeout)
        with bounded._session() as conn, conn.transaction():
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
        return [
            IntegrationSummary(
                id=r[0], organization_id=r[1], organization_name=r[2],
                status=IntegrationStatus(r[3]), schedule=r[4], cutoff_date=r[5],
            )
            for r in rows
        ]
