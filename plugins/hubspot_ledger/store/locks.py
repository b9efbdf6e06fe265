"""The locks that keep runs apart: each run's liveness lock (issue 13) and each integration's
write lock (issue 4), both PostgreSQL advisory locks that die with the connection holding them,
so a killed process never leaves one behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from typing import Any

import psycopg

from hubspot_ledger.load.errors import LedgerBusyError
from hubspot_ledger.store.base import Repository, scalar, schema_errors

# First key of the per-integration write lock (pg_advisory_lock(int, int)): "HSLG".
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
# The application_name of the session holding an integration's write lock: its DAG run id.
_WRITER = ("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
           "WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM "
           "pg_database WHERE datname = current_database()) AND l.classid = %s::oid "
           "AND l.objsubid = 2 AND l.objid = %s::oid AND l.pid <> pg_backend_pid()")
# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an application_name.
_NAME_BYTES = 63


def _alive(integration: str, dag_run: str) -> str:
    return _RUN_ALIVE.format(ns=_RUN_NAMESPACE, integration=integration, dag_run=dag_run)


class Locks(Repository):
    @contextmanager
    def run_alive(self, integration_id: int, dag_run_id: str) -> Iterator[None]:
        """Hold the run's liveness lock while the block runs: a shared advisory lock (every
        process of the run may hold it at once).

        On a connection of its own, on purpose: the lock must stay held for the whole task,
        whatever the hook's connection does meanwhile (reconnects after an error, is closed by
        its owner) and while the writer's connection commits; and it must die with the process,
        which a session lock on a connection nobody else uses does."""
        params = {"integration": integration_id, "dag_run": dag_run_id}
        with closing(self._ledger.new_connection()) as conn:
            conn.autocommit = True
            conn.execute(f"SELECT pg_advisory_lock_shared({_RUN_NAMESPACE}, {_RUN_KEY})", params)
            try:
                yield
            finally:
                _release(conn, f"SELECT pg_advisory_unlock_shared({_RUN_NAMESPACE}, {_RUN_KEY})",
                         params)

    def run_is_alive(self, integration_id: int, dag_run_id: str) -> bool:
        """Whether a process working on that run holds its liveness lock right now."""
        with self._session() as conn:
            return bool(scalar(conn.execute(
                f"SELECT {_alive('%(integration)s', '%(dag_run)s')}",
                {"integration": integration_id, "dag_run": dag_run_id})))

    def unattended_runs(self, integration_id: int, dag_run_id: str) -> list[tuple[int, str]]:
        """(row id, DAG run id) of the integration's other runs still `running` in sync_runs
        whose liveness lock nobody holds: no process is working on them at this moment."""
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT r.id, r.dag_run_id FROM ledger.sync_runs r WHERE r.integration_id = %s"
                f" AND r.status = 'running' AND r.dag_run_id IS NOT NULL AND r.dag_run_id <> %s"
                f" AND NOT {_alive('r.integration_id', 'r.dag_run_id')} ORDER BY r.id",
                [integration_id, dag_run_id]).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def settle_interrupted_run(self, integration_id: int, dag_run_id: str, message: str
                               ) -> bool:
        """Mark a run that can no longer finish as failed, saying why; only while it is still
        `running` and nobody holds its liveness lock (checked in the same statement). True
        when the row was settled here."""
        with self._session() as conn:
            row = conn.execute(
                f"UPDATE ledger.sync_runs SET status = 'failed', message = %s, "
                f"finished_at = greatest(now(), started_at) WHERE integration_id = %s "
                f"AND dag_run_id = %s AND status = 'running' "
                f"AND NOT {_alive('integration_id', 'dag_run_id')} RETURNING id",
                [message[:2000], integration_id, dag_run_id]).fetchone()
        return row is not None

    @contextmanager
    def integration_lock(self, integration_id: int, dag_run_id: str
                         ) -> Iterator[psycopg.Connection[Any]]:
        """Hold the integration's write lock; yields the connection that holds it (autocommit).

        Never waits: when another run of the integration holds it, this raises
        `LedgerBusyError` naming that run at once, so the task gives its worker slot back and
        Airflow runs it again later (sync.tasks reschedules it), instead of a task holding a
        slot while it waits. A connection of its own, on purpose: the lock lives as long as this
        block, and the writer's page transactions on it never mix with the hook's short
        commits (token refreshes from the read-ahead threads, run bookkeeping).
        """
        key = [_LOCK_NAMESPACE, integration_id]
        with closing(self._ledger.new_connection()) as conn, schema_errors():
            conn.autocommit = True
            # Other runs find out who writes from the session's name (the lock's own row in
            # pg_locks says only which connection holds it).
            conn.execute("SELECT set_config('application_name', %s, false)",
                         [dag_run_id.encode()[:_NAME_BYTES].decode(errors="ignore")])
            for _ in range(3):  # a holder that lets go between the two statements: try again
                if scalar(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key)):
                    break
                holder = scalar(conn.execute(_WRITER, key))
                if holder is not None:
                    raise _busy(integration_id, holder or "unknown")
            else:
                raise _busy(integration_id, "unknown")
            try:
                yield conn
            finally:
                _release(conn, "SELECT pg_advisory_unlock(%s, %s)", key)


def _release(conn: psycopg.Connection[Any], unlock: str, params: Any) -> None:
    """Unlock now, so the next run finds the lock free at once (the server drops a closed
    connection's locks only when its backend has ended); a broken connection has lost its
    locks already, and must not hide the error that broke it."""
    with suppress(psycopg.Error):
        conn.execute(unlock, params)


def _busy(integration_id: int, holder: str) -> LedgerBusyError:
    return LedgerBusyError(f"another run of integration {integration_id} is writing (dag run "
                           f"{holder}); this step gives its worker back and runs again "
                           "once that run has written")
