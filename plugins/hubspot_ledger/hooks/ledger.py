"""`LedgerHook`: the ledger's I/O, on the Postgres provider's hook (connection `ledger_default`).

No business rules here: the map layer decides what to write, this hook writes it (DESIGN.md,
"Data flow", load layer). Every connection comes from the provider hook's `get_conn()`, so the
Airflow connection (and its extras: sslmode, …) is the one source of where the ledger is.

The hook owns one connection, opened on first use and reused by every call until `close()` (or
the end of a `with LedgerHook() as ledger:` block). It runs in autocommit: a call that writes
more than one statement commits them together in its own transaction block, and nothing is left
in an open transaction between calls. The repositories of each concern (`hubspot_ledger.store`)
work on it: `ledger.integrations`, `ledger.tokens`, `ledger.settings`, `ledger.runs`,
`ledger.locks`, `ledger.members`, `ledger.errors`, `ledger.overview`, `ledger.webhooks`. A few
things take a connection of their own, on purpose, each saying why: the write lock (`writer`),
a run's liveness lock, the parse-time list of integrations, the rate limiter, `migrate`
creating the database.
"""

from __future__ import annotations

import copy
import json
import threading
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import psycopg
from airflow.providers.postgres.hooks.postgres import PostgresHook
from psycopg import sql

from hubspot_ledger.config import LEDGER_CONN_ID, MIGRATIONS_DIR
from hubspot_ledger.load import migrations
from hubspot_ledger.load.errors import LedgerUnavailableError, first_line
from hubspot_ledger.load.writer import LedgerWriter
from hubspot_ledger.ratelimit import PortalRateLimiter
from hubspot_ledger.store.base import schema_errors
from hubspot_ledger.store.errors_log import ErrorsLog
from hubspot_ledger.store.integrations import Integrations
from hubspot_ledger.store.locks import Locks
from hubspot_ledger.store.members import Members
from hubspot_ledger.store.overview import Overview
from hubspot_ledger.store.runs import Runs
from hubspot_ledger.store.settings import Settings
from hubspot_ledger.store.tokens import Tokens
from hubspot_ledger.store.webhooks import Webhooks

_MAINTENANCE_DB = "postgres"


class LedgerHook(PostgresHook):
    """Reads and writes the ledger schema of DESIGN.md; see the module docstring."""

    conn_name_attr = "ledger_conn_id"
    default_conn_name = LEDGER_CONN_ID
    conn_type = "postgres"
    hook_name = "HubSpot Ledger"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._own: psycopg.Connection[Any] | None = None
        # The read-ahead threads of a step share the hook (token refreshes): one call at a
        # time on its connection, so one thread's transaction never takes in another's work.
        self._lock = threading.RLock()
        self.integrations = Integrations(self)
        self.tokens = Tokens(self)
        self.settings = Settings(self)
        self.runs = Runs(self)
        self.locks = Locks(self)
        self.members = Members(self)
        self.errors = ErrorsLog(self)
        self.overview = Overview(self)
        self.webhooks = Webhooks(self)

    # --- connections ----------------------------------------------------------------------

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
    def session(self) -> Iterator[psycopg.Connection[Any]]:
        """The hook's connection, this thread's alone while the block runs; (re)opened when
        there is none or the last one broke (a ledger restart costs the call, not the task)."""
        with self._lock, schema_errors():
            conn = self._own
            if conn is None or conn.closed or conn.broken:
                conn = self._own = self._connect()
                conn.autocommit = True
                # A hook dropped without close() (`LedgerHook().runs.get(…)`) closes it too.
                weakref.finalize(self, conn.close)
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None

    def __enter__(self) -> LedgerHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_connection(self, *, connect_timeout: int | None = None) -> psycopg.Connection[Any]:
        """A new connection to the ledger, apart from the hook's; the caller closes it."""
        if connect_timeout is None:
            return self._connect()
        return self._sibling(connect_timeout=connect_timeout)._connect()

    def rate_limiter(self, portal_id: str) -> PortalRateLimiter:
        """The portal's request budget, kept in this ledger (shared by every worker). On
        connections of its own: every take commits at once, from whichever thread asks."""
        return PortalRateLimiter(portal_id, self.new_connection)

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

    # --- writing a step's records ---------------------------------------------------------

    @contextmanager
    def writer(self, integration_id: int, dag_run_id: str) -> Iterator[LedgerWriter]:
        """A `LedgerWriter` for the integration, holding its write lock while it lives; raises
        `LedgerBusyError` at once when another run of the integration is writing."""
        organization_id = self.integrations.get(integration_id).organization_id
        with self.locks.integration_lock(integration_id, dag_run_id) as conn:
            yield LedgerWriter(conn, integration_id, organization_id)

    # --- schema -----------------------------------------------------------------------------

    def migrate(self, create_database: bool = False) -> list[str]:
        """Apply pending migrations; return the versions applied ([] when up to date).

        With `create_database`, first create the ledger database if the server lacks it, so
        `hubspot-ledger migrate` works on a fresh server.
        """
        if create_database:
            self._ensure_database()
        with self.session() as conn:
            return migrations.migrate(conn, MIGRATIONS_DIR)

    def _ensure_database(self) -> None:
        name = self.database or self.connection.schema
        if not name:
            raise ValueError(f"connection {self.get_conn_id()!r} names no database")
        try:
            # The usual case costs one connection (the hook's) and needs no rights on the
            # maintenance DB.
            with self.session():
                return
        except LedgerUnavailableError:
            pass  # missing database, or a server that is down: the maintenance DB tells which
        # Its own connection, on purpose: to another database (the ledger's may not exist yet).
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
