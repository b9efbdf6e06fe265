"""Sync runs (issue 4): their rows, what each decided to read, coverage per object type
(issue 10), step failures, and the staging a finished run leaves behind."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hubspot_ledger.load.errors import NotFoundError
from hubspot_ledger.load.records import SyncRunStatus
from hubspot_ledger.store.base import Repository, scalar

_RUN_KEYS = ("id", "integration_id", "started_at", "finished_at", "status", "counts",
             "dag_run_id", "message", "failures", "sync_invoices", "reads")


class Runs(Repository):
    def start(self, integration_id: int, dag_run_id: str) -> int:
        """The sync_runs row of this DAG run, created by the first task that asks."""
        with self._session() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO ledger.sync_runs (integration_id, dag_run_id) VALUES (%s, %s) "
                "ON CONFLICT (integration_id, dag_run_id) WHERE dag_run_id IS NOT NULL "
                "DO NOTHING", [integration_id, dag_run_id])
            run_id = scalar(conn.execute(
                "SELECT id FROM ledger.sync_runs WHERE integration_id = %s AND dag_run_id = %s",
                [integration_id, dag_run_id]))
        assert run_id is not None
        return int(run_id)

    def get(self, run_id: int) -> dict[str, Any]:
        with self._session() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_RUN_KEYS)} FROM ledger.sync_runs WHERE id = %s",  # noqa: S608
                [run_id]).fetchone()
        if row is None:
            raise NotFoundError(f"sync run {run_id} does not exist")
        return dict(zip(_RUN_KEYS, row, strict=True))

    def latest(self, integration_id: int) -> dict[str, Any] | None:
        with self._session() as conn:
            run_id = scalar(conn.execute("SELECT max(id) FROM ledger.sync_runs "
                                         "WHERE integration_id = %s", [integration_id]))
        return None if run_id is None else self.get(int(run_id))

    def add_counts(self, run_id: int, step: str, counts: dict[str, int]) -> None:
        """Store one step's counts under its name (a retried step replaces its own)."""
        self._update("counts = counts || jsonb_build_object(%s::text, %s::jsonb)",
                     [step, json.dumps(counts)], run_id)

    def finish(self, run_id: int, status: SyncRunStatus, message: str | None = None) -> None:
        self._update("status = %s, message = %s, finished_at = greatest(now(), started_at)",
                     [status.value, message], run_id)

    def set_mode(self, run_id: int, mode: str,
                 window: tuple[dt.datetime, dt.datetime] | None = None) -> None:
        """Record what the run reads (its steps agree; the last to say it wins)."""
        self._update("mode = %s, window_start = %s, window_end = %s",
                     [mode, *(window or (None, None))], run_id)

    def set_invoices(self, run_id: int, on: bool) -> None:
        """The branch's decision for this run, which the report follows."""
        self._update("sync_invoices = %s", [on], run_id)

    def note_failure(self, run_id: int, step: str, message: str) -> None:
        """Keep why a step of the run failed, for the report (its retry may clear it)."""
        self._update("failures = failures || jsonb_build_object(%s::text, %s::text)",
                     [step, message[:2000]], run_id)

    def clear_failure(self, run_id: int, step: str) -> None:
        """The step succeeded (on a retry): its earlier failure no longer fails the run."""
        with self._session() as conn:
            conn.execute("UPDATE ledger.sync_runs SET failures = failures - %s::text "
                         "WHERE id = %s AND failures ? %s::text", [step, run_id, step])

    def _update(self, assignments: str, params: list[Any], run_id: int) -> None:
        with self._session() as conn:
            conn.execute(f"UPDATE ledger.sync_runs SET {assignments} WHERE id = %s",  # noqa: S608
                         [*params, run_id])

    def count_errors(self, run_id: int) -> int:
        """Entries this run wrote to the errors log."""
        with self._session() as conn:
            return int(scalar(conn.execute(
                "SELECT count(*) FROM ledger.integration_errors WHERE sync_run_id = %s",
                [run_id])))

    def clear_staging(self, run_id: int) -> None:
        """What the run's steps handed each other: the staged records, and the ids of a read
        they shared (`sync.steps.LINE_CHANGES`: its window and summary stay in `reads`)."""
        with self._session() as conn:
            conn.execute("DELETE FROM ledger.sync_staging WHERE sync_run_id = %s", [run_id])
            conn.execute(
                "UPDATE ledger.sync_runs SET reads = jsonb_set(reads, '{line item}', "
                "(reads -> 'line item') - 'changed' - 'deleted') "
                "WHERE id = %s AND reads ? 'line item'", [run_id])

    def incremental_since(self, integration_id: int, run_id: int, overlap: dt.timedelta
                          ) -> dt.datetime | None:
        """Where an incremental run starts reading: the start of the last successful run
        (other than `run_id`) less `overlap`; None when there is none (read everything)."""
        with self._session() as conn:
            started = scalar(conn.execute(
                "SELECT max(started_at) FROM ledger.sync_runs WHERE integration_id = %s "
                "AND status = 'success' AND mode IN ('full', 'incremental') AND id <> %s",
                [integration_id, run_id]))
        return None if started is None else started - overlap

    # --- what each run decided to read, and coverage per object type (issue 10) -------------

    def read(self, run_id: int, remote_type: str) -> dict[str, Any] | None:
        """What this run decided to read of `remote_type` (its first step to ask decides;
        later steps and retries follow, so a settings change mid-run cannot split a run)."""
        with self._session() as conn:
            value = scalar(conn.execute(
                "SELECT reads -> %s FROM ledger.sync_runs WHERE id = %s", [remote_type, run_id]))
        return dict(value) if value else None

    def decide_read(self, run_id: int, remote_type: str, read: dict[str, Any]
                    ) -> dict[str, Any]:
        """Record `read` for the run unless a step decided first; returns the decision."""
        with self._session() as conn:
            value = scalar(conn.execute(
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
        with self._session() as conn:
            conn.execute(
                "INSERT INTO ledger.sync_coverage (integration_id, remote_type, cutoff_date, "
                "read_from, sync_run_id) SELECT %s, %s, %s, started_at, id "
                "FROM ledger.sync_runs WHERE id = %s ON CONFLICT (integration_id, remote_type) "
                "DO UPDATE SET cutoff_date = EXCLUDED.cutoff_date, "
                "read_from = greatest(ledger.sync_coverage.read_from, EXCLUDED.read_from), "
                "sync_run_id = EXCLUDED.sync_run_id, updated_at = now()",
                [integration_id, remote_type, cutoff, run_id])

    def drop_coverage(self, integration_id: int, remote_type: str) -> None:
        with self._session() as conn:
            conn.execute("DELETE FROM ledger.sync_coverage WHERE integration_id = %s "
                         "AND remote_type = %s", [integration_id, remote_type])
