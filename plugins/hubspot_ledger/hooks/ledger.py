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
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook
from psycopg import sql

from hubspot_ledger.config import LEDGER_CONN_ID, MIGRATIONS_DIR
from hubspot_ledger.load import migrations
from hubspot_ledger.load.errors import (
    LedgerBusyError,
    LedgerSchemaError,
    LedgerUnavailableError,
    NotFoundError,
    first_line,
)
from hubspot_ledger.load.problems import count_open
from hubspot_ledger.load.records import (
    ACCOUNT_SETTINGS,
    AccountType,
    Integration,
    IntegrationError,
    IntegrationSettings,
    IntegrationStatus,
    IntegrationSummary,
    Provider,
    SyncRunStatus,
    TokenUpdate,
)
from hubspot_ledger.load.writer import LedgerWriter, insert_errors
from hubspot_ledger.ratelimit import PortalRateLimiter

# libpq counts connect_timeout in whole seconds and treats anything under 2 as 2.
_MIN_CONNECT_TIMEOUT = 2
_MAINTENANCE_DB = "postgres"
# First key of the per-integration advisory lock (pg_advisory_lock(int, int)): "HSLG".
_LOCK_NAMESPACE = 0x48534C47
# First key of a run's liveness lock, held (shared) by the processes working on a DAG run of an
# integration; the second is hashtext('<integration id>:<dag run id>'): "HSRN".
_RUN_NAMESPACE = 0x4853524E
_RUN_KEY = "hashtext(%(integration)s::text || ':' || %(dag_run)s)"
# Whether someone holds a run's liveness lock (pg_locks shows every database's locks).
_RUN_ALIVE = ("EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
              "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
              " AND l.classid = {ns}::oid AND l.objsubid = 2 AND l.objid = hashtext("
              "{integration}::text || ':' || {dag_run})::oid)")


def _scalar(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    return row[0] if row else None


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

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection to the ledger; the caller closes it."""
        return self._connect()

    def rate_limiter(self, portal_id: str) -> PortalRateLimiter:
        """The portal's request budget, kept in this ledger (shared by every worker)."""
        return PortalRateLimiter(portal_id, self._connect)

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

    # --- connect (issue 3) ----------------------------------------------------------------------

    _INTEGRATION_COLUMNS = (
        "i.id, i.organization_id, o.name, i.status, i.status_message, i.remote_id, i.currency, "
        "i.ui_domain, i.cutoff_date, i.schedule, i.expires_in, i.scope, i.token_created_at, "
        "i.access_token, i.refresh_token"
    )

    @staticmethod
    def _integration(row: Any) -> Integration:
        return Integration(
            id=row[0], organization_id=row[1], organization_name=row[2],
            status=IntegrationStatus(row[3]), status_message=row[4], remote_id=row[5],
            currency=row[6], ui_domain=row[7], cutoff_date=row[8], schedule=row[9],
            expires_in=row[10], scope=row[11], token_created_at=row[12], access_token=row[13],
            refresh_token=row[14],
        )

    def _select_integration(self, conn: psycopg.Connection[Any], integration_id: int,
                            *, for_update: bool = False) -> Integration:
        lock = " FOR UPDATE OF i" if for_update else ""
        row = conn.execute(
            f"SELECT {self._INTEGRATION_COLUMNS} FROM ledger.integrations i "  # noqa: S608
            f"JOIN ledger.organizations o ON o.id = i.organization_id WHERE i.id = %s{lock}",
            [integration_id],
        ).fetchone()
        if row is None:
            raise NotFoundError(f"integration {integration_id} does not exist")
        return self._integration(row)

    def get_integration(self, integration_id: int) -> Integration:
        with self._session() as conn:
            return self._select_integration(conn, integration_id)

    def set_integration_status(self, integration_id: int, status: IntegrationStatus,
                               message: str | None = None, *,
                               unless: IntegrationStatus | None = None) -> bool:
        """Set status and message; with `unless`, only if the status is not that one now (one
        statement, so a concurrent change cannot slip in between). True if it was set."""
        with self._session() as conn, conn.transaction():
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
            pinned = _scalar(conn.execute(
                "SELECT remote_id FROM ledger.integrations WHERE id = %s", [integration_id]))
        if pinned is None:
            raise NotFoundError(f"integration {integration_id} does not exist")
        return str(pinned)

    def claim_oauth_state(self, nonce: str, integration_id: int, expires_at: dt.datetime
                          ) -> bool:
        """Record a state's use; False when it was used before (a replay)."""
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO ledger.oauth_states (nonce, integration_id, expires_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                [nonce, integration_id, expires_at],
            ).fetchone()
        return row is not None

    def update_tokens_locked(
        self, integration_id: int, decide: Callable[[Integration], TokenUpdate | None]
    ) -> Integration:
        """Serialize token refreshes of one integration across processes.

        Locks the integration row, hands `decide` the row as it is now (another process may have
        refreshed meanwhile), stores what `decide` returns (None: keep as is) and commits. The
        lock is held while `decide` runs, so two refreshers never both spend a refresh token.
        """
        with self._session() as conn, conn.transaction():
            current = self._select_integration(conn, integration_id, for_update=True)
            update = decide(current)
            if update is None:
                return current
            conn.execute(
                "UPDATE ledger.integrations SET access_token = %s, refresh_token = %s, "
                "expires_in = %s, scope = NULLIF(%s, ''), token_created_at = %s WHERE id = %s",
                [update.access_token, update.refresh_token, update.expires_in, update.scope,
                 update.token_created_at, integration_id],
            )
            return self._select_integration(conn, integration_id)

    # --- settings (R-SET-1..3) --------------------------------------------------------------------

    def rewrap_tokens(self, rewrap: Callable[[str], str]) -> int:
        """Apply `rewrap` (re-encryption under the newest key) to every stored token, one
        integration per transaction under its row lock; returns how many were re-encrypted."""
        done = 0
        with self._session() as conn:
            conn.autocommit = True  # each integration's transaction commits on its own
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM ledger.integrations WHERE access_token IS NOT NULL "
                "OR refresh_token IS NOT NULL ORDER BY id").fetchall()]
            for integration_id in ids:
                with conn.transaction():
                    row = conn.execute(
                        "SELECT access_token, refresh_token FROM ledger.integrations "
                        "WHERE id = %s FOR UPDATE", [integration_id]).fetchone()
                    if row is None:
                        continue
                    access, refresh = (rewrap(v) if v else v for v in row)
                    conn.execute("UPDATE ledger.integrations SET access_token = %s, "
                                 "refresh_token = %s WHERE id = %s",
                                 [access, refresh, integration_id])
                    done += 1
        return done

    def get_settings(self, integration_id: int) -> IntegrationSettings:
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
                f"s.company_id FROM ledger.integration_settings s {joins} "
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
                 "company_id": row[-1]},
        )

    def find_account_types(self, organization_id: int, codes: Sequence[str]
                           ) -> dict[str, tuple[int, AccountType]]:
        """Accounts of the organization by code: code → (id, type)."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT code, id, account_type FROM ledger.accounts WHERE organization_id = %s "
                "AND code = ANY(%s)", [organization_id, list(codes)],
            ).fetchall()
        return {code: (int(id_), AccountType(kind)) for code, id_, kind in rows}

    def find_company_id(self, organization_id: int, name: str) -> int | None:
        with self._session() as conn:
            row = conn.execute(
                "SELECT id FROM ledger.companies WHERE organization_id = %s AND name = %s "
                "AND NOT is_placeholder", [organization_id, name],
            ).fetchone()
        return int(row[0]) if row else None

    def update_settings(self, integration_id: int, values: dict[str, Any]) -> None:
        """Write settings columns (ids already resolved in the integration's organization)."""
        allowed = {*ACCOUNT_SETTINGS, "company_id", "sync_invoices"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not a settings column: {', '.join(sorted(unknown))}")
        if not values:
            return
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder()) for col in values
        )
        with self._session() as conn, conn.transaction():
            conn.execute(
                sql.SQL("UPDATE ledger.integration_settings SET {} WHERE integration_id = %s"
                        ).format(assignments),
                [*values.values(), integration_id],
            )

    # --- accounting entities (seeded by the accounting product; here for demo and tests) ------

    def create_account(self, organization_id: int, code: str, name: str,
                       account_type: AccountType) -> int:
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO ledger.accounts (organization_id, code, name, account_type) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [organization_id, code, name, account_type.value],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def create_company(self, organization_id: int, name: str, currency: str) -> int:
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO ledger.companies (organization_id, name, currency) "
                "VALUES (%s, %s, %s) RETURNING id",
                [organization_id, name, currency],
            ).fetchone()
        assert row is not None
        return int(row[0])

    # --- errors log -------------------------------------------------------------------------------

    def list_errors(self, integration_id: int, limit: int = 200, *, open_only: bool = False
                    ) -> list[IntegrationError]:
        """The integration's errors log, newest first; `open_only`: the records that still
        fail (what an accountant must act on), else the whole history."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT id, sync_run_id, remote_type, remote_id, message, created_at, "
                "resolved_at, severity, last_seen_at "
                "FROM ledger.integration_errors WHERE integration_id = %s "
                "AND (NOT %s OR resolved_at IS NULL) "
                "ORDER BY last_seen_at DESC, id DESC LIMIT %s",
                [integration_id, open_only, max(0, limit)],
            ).fetchall()
        return [IntegrationError(*r) for r in rows]

    # --- sync runs, errors log and the per-integration write lock (issue 4) -------------------

    def start_sync_run(self, integration_id: int, dag_run_id: str) -> int:
        """The sync_runs row of this DAG run, created by the first task that asks."""
        with self._session() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO ledger.sync_runs (integration_id, dag_run_id) VALUES (%s, %s) "
                "ON CONFLICT (integration_id, dag_run_id) WHERE dag_run_id IS NOT NULL "
                "DO NOTHING", [integration_id, dag_run_id])
            row = conn.execute(
                "SELECT id FROM ledger.sync_runs WHERE integration_id = %s AND dag_run_id = %s",
                [integration_id, dag_run_id]).fetchone()
        assert row is not None
        return int(row[0])

    def add_run_counts(self, run_id: int, step: str, counts: dict[str, int]) -> None:
        """Store one step's counts under its name (a retried step replaces its own)."""
        with self._session() as conn, conn.transaction():
            conn.execute(
                "UPDATE ledger.sync_runs SET counts = counts || "
                "jsonb_build_object(%s::text, %s::jsonb) WHERE id = %s",
                [step, json.dumps(counts), run_id])

    def finish_sync_run(self, run_id: int, status: SyncRunStatus, message: str | None = None
                        ) -> None:
        with self._session() as conn, conn.transaction():
            conn.execute(
                "UPDATE ledger.sync_runs SET status = %s, message = %s, "
                "finished_at = greatest(now(), started_at) WHERE id = %s",
                [status.value, message, run_id])

    # --- runs killed mid-way (issue 13) ---------------------------------------------------------

    @contextmanager
    def run_alive(self, integration_id: int, dag_run_id: str) -> Iterator[None]:
        """Hold the run's liveness lock while the block runs: a shared advisory lock (every
        process of the run may hold it at once) that PostgreSQL drops with the holder's
        connection, so a killed process never leaves it behind."""
        params = {"integration": integration_id, "dag_run": dag_run_id}
        with self._session() as conn:
            conn.autocommit = True
            conn.execute(f"SELECT pg_advisory_lock_shared({_RUN_NAMESPACE}, {_RUN_KEY})",
                         params)
            try:
                yield
            finally:
                conn.execute(f"SELECT pg_advisory_unlock_shared({_RUN_NAMESPACE}, {_RUN_KEY})",
                             params)

    def run_is_alive(self, integration_id: int, dag_run_id: str) -> bool:
        """Whether a process working on that run holds its liveness lock right now."""
        alive = _RUN_ALIVE.format(ns=_RUN_NAMESPACE, integration="%(integration)s",
                                  dag_run="%(dag_run)s")
        with self._session() as conn:
            return bool(_scalar(conn.execute(f"SELECT {alive}", {
                "integration": integration_id, "dag_run": dag_run_id})))

    def unattended_runs(self, integration_id: int, dag_run_id: str) -> list[tuple[int, str]]:
        """(row id, DAG run id) of the integration's other runs still `running` in sync_runs
        whose liveness lock nobody holds: no process is working on them at this moment."""
        alive = _RUN_ALIVE.format(ns=_RUN_NAMESPACE, integration="r.integration_id",
                                  dag_run="r.dag_run_id")
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT r.id, r.dag_run_id FROM ledger.sync_runs r WHERE r.integration_id = %s"
                f" AND r.status = 'running' AND r.dag_run_id IS NOT NULL "
                f"AND r.dag_run_id <> %s AND NOT {alive} ORDER BY r.id",
                [integration_id, dag_run_id]).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def settle_interrupted_run(self, integration_id: int, dag_run_id: str, message: str
                               ) -> bool:
        """Mark a run that can no longer finish as failed, saying why; only while it is still
        `running` and nobody holds its liveness lock (checked in the same statement). True
        when the row was settled here."""
        alive = _RUN_ALIVE.format(ns=_RUN_NAMESPACE, integration="integration_id",
                                  dag_run="dag_run_id")
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                f"UPDATE ledger.sync_runs SET status = 'failed', message = %s, "
                f"finished_at = greatest(now(), started_at) WHERE integration_id = %s "
                f"AND dag_run_id = %s AND status = 'running' AND NOT {alive} RETURNING id",
                [message[:2000], integration_id, dag_run_id]).fetchone()
        return row is not None

    def latest_sync_run(self, integration_id: int) -> dict[str, Any] | None:
        with self._session() as conn:
            row = conn.execute("SELECT id FROM ledger.sync_runs WHERE integration_id = %s "
                               "ORDER BY id DESC LIMIT 1", [integration_id]).fetchone()
        return None if row is None else self.get_sync_run(int(row[0]))

    def table_counts(self, tables: Sequence[str]) -> dict[str, int]:
        with self._session() as conn:
            return {t: int(_scalar(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier("ledger", t))))) for t in tables}

    def contract_overview(self, integration_id: int, limit: int
                          ) -> list[tuple[str, str, Any, str, int]]:
        """(name, customer, total, currency, obligations) of the integration's contracts."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT c.name, cu.name, c.total_amount, c.currency, "
                "(SELECT count(*) FROM ledger.performance_obligations p "
                " WHERE p.contract_id = c.id) "
                "FROM ledger.integration_records r JOIN ledger.contracts c ON c.id = r.local_id "
                "JOIN ledger.customers cu ON cu.id = c.customer_id "
                "WHERE r.integration_id = %s AND r.remote_type = 'deal' ORDER BY c.id LIMIT %s",
                [integration_id, limit]).fetchall()
        return [(str(a), str(b), c, str(d), int(e)) for a, b, c, d, e in rows]

    def incremental_since(self, integration_id: int, run_id: int, overlap: dt.timedelta
                          ) -> dt.datetime | None:
        """Where an incremental run starts reading: the start of the last successful run
        (other than `run_id`) less `overlap`; None when there is none (read everything)."""
        with self._session() as conn:
            started = _scalar(conn.execute(
                "SELECT max(started_at) FROM ledger.sync_runs WHERE integration_id = %s "
                "AND status = 'success' AND mode IN ('full', 'incremental') AND id <> %s",
                [integration_id, run_id]))
        return None if started is None else started - overlap

    def set_run_mode(self, run_id: int, mode: str,
                     window: tuple[dt.datetime, dt.datetime] | None = None) -> None:
        """Record what the run reads (its steps agree; the last to say it wins)."""
        with self._session() as conn, conn.transaction():
            conn.execute("UPDATE ledger.sync_runs SET mode = %s, window_start = %s, "
                         "window_end = %s WHERE id = %s",
                         [mode, *(window or (None, None)), run_id])

    # --- coverage per object type and what each run decided (issue 10) ----------------------

    def run_read(self, run_id: int, remote_type: str) -> dict[str, Any] | None:
        """What this run decided to read of `remote_type` (its first step to ask decides;
        later steps and retries follow, so a settings change mid-run cannot split a run)."""
        with self._session() as conn:
            value = _scalar(conn.execute(
                "SELECT reads -> %s FROM ledger.sync_runs WHERE id = %s", [remote_type, run_id]))
        return dict(value) if value else None

    def decide_run_read(self, run_id: int, remote_type: str, read: dict[str, Any]
                        ) -> dict[str, Any]:
        """Record `read` for the run unless a step decided first; returns the decision."""
        with self._session() as conn, conn.transaction():
            value = _scalar(conn.execute(
                "UPDATE ledger.sync_runs SET reads = CASE WHEN reads ? %s THEN reads "
                "ELSE reads || jsonb_build_object(%s::text, %s::jsonb) END WHERE id = %s "
                "RETURNING reads -> %s",
                [remote_type, remote_type, json.dumps(read), run_id, remote_type]))
        return dict(value)

    def coverage(self, integration_id: int, remote_type: str
                 ) -> tuple[dt.date | None, dt.datetime] | None:
        """(cutoff, read_from) of the last complete read of a type, or None: never read."""
        with self._session() as conn:
            row = conn.execute(
                "SELECT cutoff_date, read_from FROM ledger.sync_coverage "
                "WHERE integration_id = %s AND remote_type = %s",
                [integration_id, remote_type]).fetchone()
        return None if row is None else (row[0], row[1])

    def cover(self, integration_id: int, remote_type: str, cutoff: dt.date | None,
              run_id: int) -> None:
        """A read of the type completed in this run: the next run reads from its start."""
        with self._session() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO ledger.sync_coverage (integration_id, remote_type, cutoff_date, "
                "read_from, sync_run_id) SELECT %s, %s, %s, started_at, id "
                "FROM ledger.sync_runs WHERE id = %s ON CONFLICT (integration_id, remote_type) "
                "DO UPDATE SET cutoff_date = EXCLUDED.cutoff_date, "
                "read_from = greatest(ledger.sync_coverage.read_from, EXCLUDED.read_from), "
                "sync_run_id = EXCLUDED.sync_run_id, updated_at = now()",
                [integration_id, remote_type, cutoff, run_id])

    def drop_coverage(self, integration_id: int, remote_type: str) -> None:
        with self._session() as conn, conn.transaction():
            conn.execute("DELETE FROM ledger.sync_coverage WHERE integration_id = %s "
                         "AND remote_type = %s", [integration_id, remote_type])

    def set_run_invoices(self, run_id: int, on: bool) -> None:
        """The branch's decision for this run, which the report follows."""
        with self._session() as conn, conn.transaction():
            conn.execute("UPDATE ledger.sync_runs SET sync_invoices = %s WHERE id = %s",
                         [on, run_id])

    def count_open_errors(self, integration_id: int) -> int:
        with self._session() as conn:
            return count_open(conn, integration_id)

    def note_run_failure(self, run_id: int, step: str, message: str) -> None:
        """Keep why a step of the run failed, for the report (its retry may clear it)."""
        with self._session() as conn, conn.transaction():
            conn.execute(
                "UPDATE ledger.sync_runs SET failures = failures || jsonb_build_object("
                "%s::text, %s::text) WHERE id = %s", [step, message[:2000], run_id])

    def clear_run_failure(self, run_id: int, step: str) -> None:
        """The step succeeded (on a retry): its earlier failure no longer fails the run."""
        with self._session() as conn, conn.transaction():
            conn.execute("UPDATE ledger.sync_runs SET failures = failures - %s::text "
                         "WHERE id = %s AND failures ? %s::text", [step, run_id, step])

    def count_run_errors(self, run_id: int) -> int:
        with self._session() as conn:
            return int(_scalar(conn.execute(
                "SELECT count(*) FROM ledger.integration_errors WHERE sync_run_id = %s",
                [run_id])))

    def clear_staging(self, run_id: int) -> None:
        with self._session() as conn, conn.transaction():
            conn.execute("DELETE FROM ledger.sync_staging WHERE sync_run_id = %s", [run_id])

    def get_sync_run(self, run_id: int) -> dict[str, Any]:
        with self._session() as conn:
            row = conn.execute(
                "SELECT id, integration_id, started_at, finished_at, status, counts, dag_run_id,"
                " message, failures, sync_invoices, reads FROM ledger.sync_runs WHERE id = %s",
                [run_id]).fetchone()
        if row is None:
            raise NotFoundError(f"sync run {run_id} does not exist")
        keys = ("id", "integration_id", "started_at", "finished_at", "status", "counts",
                "dag_run_id", "message", "failures", "sync_invoices", "reads")
        return dict(zip(keys, row, strict=True))

    def log_errors(self, integration_id: int, run_id: int | None, step: str,
                   errors: Sequence[tuple[str | None, str | None, str]]) -> None:
        """Append (remote_type, remote_id, message) rows to the integration's errors log."""
        if not errors:
            return
        with self._session() as conn, conn.transaction():
            insert_errors(conn, integration_id, run_id, step, errors)

    @contextmanager
    def writer(self, integration_id: int, wait_seconds: float = 600
               ) -> Iterator[LedgerWriter]:
        """A `LedgerWriter` for the integration, holding its write lock while it lives."""
        organization_id = self.get_integration(integration_id).organization_id
        with self.integration_lock(integration_id, wait_seconds) as conn:
            yield LedgerWriter(conn, integration_id, organization_id)

    @contextmanager
    def integration_lock(self, integration_id: int, wait_seconds: float = 600
                         ) -> Iterator[psycopg.Connection[Any]]:
        """Hold the integration's write lock; yields the connection that holds it.

        A session-level advisory lock: PostgreSQL releases it when the holder's connection
        ends, so a killed task never leaves it behind. A second run waits up to
        `wait_seconds`, then fails saying another run is writing.
        """
        deadline = time.monotonic() + wait_seconds
        with self._session() as conn:
            conn.autocommit = True
            key = [_LOCK_NAMESPACE, integration_id]
            while not _scalar(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key)):
                if time.monotonic() >= deadline:
                    raise LedgerBusyError(
                        f"another sync of integration {integration_id} has been writing for "
                        f"over {wait_seconds:g}s; this run gives up")
                time.sleep(0.5)
            try:
                yield conn
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    # --- organization members (issue 13: tenant authorization) ---------------------------------
    # Who may act on which organization: the rows of ledger.organization_members (migration
    # 0010). The rules (role ladder, admins, what each route needs) live in
    # hubspot_ledger.members and hubspot_ledger.api.auth; these methods only read and write.

    def find_organization_id(self, name: str) -> int | None:
        """The organization of that exact name (surrounding blanks ignored), or None."""
        with self._session() as conn:
            row = conn.execute("SELECT id FROM ledger.organizations WHERE name = %s",
                               [name.strip()]).fetchone()
        return int(row[0]) if row else None

    def set_member(self, organization_id: int, username: str, role: str) -> bool:
        """Make `username` a member of the organization with `role` (a member already: the
        role changes). True when the membership is new."""
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO ledger.organization_members (organization_id, username, role) "
                "VALUES (%s, %s, %s) ON CONFLICT (organization_id, username) "
                "DO UPDATE SET role = EXCLUDED.role RETURNING (xmax = 0)",
                [organization_id, username, role],
            ).fetchone()
        assert row is not None
        return bool(row[0])

    def remove_member(self, organization_id: int, username: str) -> bool:
        """End a membership; False when there was none."""
        with self._session() as conn, conn.transaction():
            row = conn.execute(
                "DELETE FROM ledger.organization_members WHERE organization_id = %s "
                "AND username = %s RETURNING id", [organization_id, username],
            ).fetchone()
        return row is not None

    def list_members(self, organization_id: int | None = None) -> list[tuple[str, str, str]]:
        """(organization name, username, role) of every membership (of one organization),
        by organization name and username."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT o.name, m.username, m.role FROM ledger.organization_members m "
                "JOIN ledger.organizations o ON o.id = m.organization_id "
                "WHERE %s::bigint IS NULL OR m.organization_id = %s "
                "ORDER BY o.name, m.username", [organization_id, organization_id],
            ).fetchall()
        return [(str(org), str(user), str(role)) for org, user, role in rows]

    def integration_for_user(self, integration_id: int, username: str
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
        if row is None:
            return None
        summary = IntegrationSummary(
            id=row[0], organization_id=row[1], organization_name=row[2],
            status=IntegrationStatus(row[3]), schedule=row[4], cutoff_date=row[5])
        return summary, row[6]
