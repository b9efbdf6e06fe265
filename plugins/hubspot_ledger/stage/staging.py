"""What one step of a run hands to the next (ledger.sync_staging): the closed-won deals the
companies step read, with their companies, wait here for the deals step. Keyed by run, so a
retried step overwrites what it staged before and a finished run's staging is cleared."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from hubspot_ledger.load.records import RemoteType


class Staging:
    """The staging rows of one run, over a connection the caller owns."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn


    def stage(self, run_id: int, remote_type: RemoteType,
              payloads: Sequence[tuple[str, str]]) -> None:
        """(remote id, JSON text) pairs for a later step of the same run."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ledger.sync_staging (sync_run_id, remote_type, remote_id, payload) "
                "VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (sync_run_id, remote_type, "
                "remote_id) DO UPDATE SET payload = EXCLUDED.payload",
                [(run_id, remote_type.value, rid, payload) for rid, payload in payloads])

    def clear_stage(self, run_id: int, remote_type: RemoteType | None = None) -> None:
        if remote_type is None:
            self.conn.execute("DELETE FROM ledger.sync_staging WHERE sync_run_id = %s", [run_id])
        else:
            self.conn.execute("DELETE FROM ledger.sync_staging WHERE sync_run_id = %s "
                              "AND remote_type = %s", [run_id, remote_type.value])

    def staged_count(self, run_id: int, remote_type: RemoteType) -> int:
        row = self.conn.execute("SELECT count(*) FROM ledger.sync_staging WHERE "
                                "sync_run_id = %s AND remote_type = %s",
                                [run_id, remote_type.value]).fetchone()
        return int(row[0]) if row else 0

    def staged(self, run_id: int, remote_type: RemoteType, batch_size: int
               ) -> Iterator[list[tuple[str, Any]]]:
        """Staged payloads in remote-id order, `batch_size` at a time (keyset paging)."""
        last = ""
        while True:
            rows = self.conn.execute(
                "SELECT remote_id, payload FROM ledger.sync_staging WHERE sync_run_id = %s AND "
                "remote_type = %s AND remote_id > %s ORDER BY remote_id LIMIT %s",
                [run_id, remote_type.value, last, batch_size]).fetchall()
            if not rows:
                return
            yield [(str(r[0]), r[1]) for r in rows]
            last = str(rows[-1][0])

    def staged_payloads(self, run_id: int, remote_type: RemoteType, remote_ids: Sequence[str]
                        ) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT remote_id, payload FROM ledger.sync_staging WHERE sync_run_id = %s AND "
            "remote_type = %s AND remote_id = ANY(%s)",
            [run_id, remote_type.value, list(remote_ids)]).fetchall()
        return {str(r[0]): r[1] for r in rows}

