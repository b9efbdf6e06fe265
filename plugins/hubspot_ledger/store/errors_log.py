"""The integration errors log: what an accountant reads and acts on."""

from __future__ import annotations

from collections.abc import Sequence

from hubspot_ledger.load.problems import count_open, count_waiting
from hubspot_ledger.load.records import IntegrationError
from hubspot_ledger.load.writer import insert_errors
from hubspot_ledger.store.base import Repository


class ErrorsLog(Repository):
    def list(self, integration_id: int, limit: int = 200, *, open_only: bool = False
             ) -> list[IntegrationError]:
        """The integration's errors log, newest first; `open_only`: the records that still
        fail (what an accountant must act on), else the whole history."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT id, sync_run_id, remote_type, remote_id, message, created_at, "
                "resolved_at, severity, last_seen_at, cause "
                "FROM ledger.integration_errors WHERE integration_id = %s "
                "AND (NOT %s OR resolved_at IS NULL) "
                "ORDER BY last_seen_at DESC, id DESC LIMIT %s",
                [integration_id, open_only, max(0, limit)],
            ).fetchall()
        return [IntegrationError(*r) for r in rows]

    def log(self, integration_id: int, run_id: int | None, step: str,
            errors: Sequence[tuple[str | None, str | None, str]]) -> None:
        """Append (remote_type, remote_id, message) rows to the integration's errors log."""
        if not errors:
            return
        with self._session() as conn, conn.transaction():
            insert_errors(conn, integration_id, run_id, step, errors)

    def count_open(self, integration_id: int) -> int:
        """Records that still fail."""
        with self._session() as conn:
            return count_open(conn, integration_id)

    def count_open_by_cause(self, integration_id: int) -> tuple[int, int]:
        """Records that still fail, and how many of them wait for a change in HubSpot."""
        with self._session() as conn:
            return count_open(conn, integration_id), count_waiting(conn, integration_id)
