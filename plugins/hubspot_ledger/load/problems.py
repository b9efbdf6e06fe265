"""The integration errors log as a list of open problems (issue 10, DESIGN data contract).

An entry about a record stays open (`resolved_at` NULL) while that record still fails: every run
retries the records with open entries, a record that imports (or stops qualifying) resolves
them, and a record that fails again with the same message keeps its one open entry (its
`last_seen_at` and run move) instead of adding a line per run. A different message supersedes
the old entry. Warnings are information, not problems: they are written already settled.

Knows nothing about HubSpot: entries name records by remote type and id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Problem:
    remote_type: str | None
    remote_id: str | None
    message: str
    warning: bool = False


def log_problems(conn: psycopg.Connection[Any], integration_id: int, run_id: int | None,
                 step: str, problems: Sequence[Problem]) -> None:
    """Record what went wrong (or what to know) in this run, inside the caller's transaction."""
    errors = [p for p in problems if not p.warning and p.remote_id]
    history = [p for p in problems if p.warning or not p.remote_id]
    if errors:
        _log_open(conn, integration_id, run_id, step, errors)
    if history:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ledger.integration_errors (integration_id, sync_run_id, step, "
                "remote_type, remote_id, message, severity, resolved_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
                [(integration_id, run_id, step, p.remote_type, p.remote_id, p.message,
                  "warning" if p.warning else "error") for p in history])


def _log_open(conn: psycopg.Connection[Any], integration_id: int, run_id: int | None,
              step: str, errors: Sequence[Problem]) -> None:
    latest = {(p.remote_type, p.remote_id): p for p in errors}  # one open entry per record
    keys = list(latest)
    types = [t for t, _ in keys]
    ids = [i for _, i in keys]
    messages = [latest[k].message for k in keys]
    # The same problem again: keep its entry, note when it was last seen.
    seen = conn.execute(
        "UPDATE ledger.integration_errors e SET last_seen_at = now(), sync_run_id = %s "
        "FROM unnest(%s::text[], %s::text[], %s::text[]) AS n(remote_type, remote_id, message) "
        "WHERE e.integration_id = %s AND e.resolved_at IS NULL "
        "AND e.remote_type = n.remote_type AND e.remote_id = n.remote_id "
        "AND e.message = n.message RETURNING e.remote_type, e.remote_id",
        [run_id, types, ids, messages, integration_id]).fetchall()
    kept = {(str(t), str(i)) for t, i in seen}
    new = [k for k in keys if k not in kept]
    if not new:
        return
    # A different problem supersedes the record's open one.
    resolve(conn, integration_id, [(t, i) for t, i in new if t is not None and i is not None])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ledger.integration_errors (integration_id, sync_run_id, step, "
            "remote_type, remote_id, message) VALUES (%s, %s, %s, %s, %s, %s)",
            [(integration_id, run_id, step, t, i, latest[(t, i)].message) for t, i in new])


def resolve(conn: psycopg.Connection[Any], integration_id: int,
            records: Iterable[tuple[str, str]]) -> int:
    """Settle the open entries of these (remote type, remote id) records; how many were open."""
    pairs = list(records)
    if not pairs:
        return 0
    cursor = conn.execute(
        "UPDATE ledger.integration_errors e SET resolved_at = now() "
        "FROM unnest(%s::text[], %s::text[]) AS r(remote_type, remote_id) "
        "WHERE e.integration_id = %s AND e.resolved_at IS NULL "
        "AND e.remote_type = r.remote_type AND e.remote_id = r.remote_id",
        [[t for t, _ in pairs], [i for _, i in pairs], integration_id])
    return cursor.rowcount


def open_ids(conn: psycopg.Connection[Any], integration_id: int, remote_type: str
             ) -> list[str]:
    """Records of one type that still fail: every run retries them by id."""
    rows = conn.execute(
        "SELECT DISTINCT remote_id FROM ledger.integration_errors WHERE integration_id = %s "
        "AND remote_type = %s AND resolved_at IS NULL AND remote_id IS NOT NULL",
        [integration_id, remote_type]).fetchall()
    return sorted((str(r[0]) for r in rows), key=lambda i: (len(i), i))


def count_open(conn: psycopg.Connection[Any], integration_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM ledger.integration_errors WHERE integration_id = %s "
        "AND resolved_at IS NULL", [integration_id]).fetchone()
    return int(row[0]) if row else 0
