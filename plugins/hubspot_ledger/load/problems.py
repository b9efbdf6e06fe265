"""The integration errors log as a list of open problems (issue 10, DESIGN data contract).

An entry about a record stays open (`resolved_at` NULL) while that record still fails: runs
retry the records with open entries, a record that imports (or stops qualifying) resolves
them, and a record that fails again with the same message keeps its one open entry (its
`last_seen_at` and run move) instead of adding a line per run. A different message supersedes
the old entry. Warnings are information, not problems: they are written already settled.

When a record is retried depends on its entry's `cause` (issue 12, migration 0019): one whose
fix lies in the HubSpot record itself or its line items (`hubspot`) is read again when HubSpot
changes them — the incremental read finds the record, or a line of it, modified; a deleted line
leads back to it through `line_ids` — and by every full read; any other (`ledger`, or no cause:
entries older than 0019) is read again by id every run.

Knows nothing about HubSpot: entries name records by remote type and id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hubspot_ledger.load.records import ProblemCause

# The entry's line ids from a row of the unnest below (a JSON array of strings; none: NULL).
_LINE_IDS = ("NULLIF(ARRAY(SELECT jsonb_array_elements_text(n.lines)), '{}'::text[])")


@dataclass(frozen=True, slots=True)
class Problem:
    remote_type: str | None
    remote_id: str | None
    message: str
    warning: bool = False
    # Where the fix lies (ProblemCause's words); retried every run unless it is "hubspot".
    cause: str = ProblemCause.LEDGER.value
    # A deal's or invoice's line items when it failed: deleting one of them in HubSpot leaves
    # the deal or invoice itself unmodified, so the line leads the next run back to it.
    lines: tuple[str, ...] = ()


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
    # The same problem again: keep its entry, note when it was last seen, and what it now
    # waits for (an entry older than migration 0019 gets its cause here).
    seen: list[tuple[Any, ...]] = []
    for remote_type, ids in _by_type(keys).items():
        found = [latest[(remote_type, i)] for i in ids]
        seen += conn.execute(
            "UPDATE ledger.integration_errors e SET last_seen_at = now(), sync_run_id = %s, "
            "cause = n.cause, line_ids = " + _LINE_IDS + " "
            "FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[]) "
            "AS n(remote_id, message, cause, lines) "
            "WHERE e.integration_id = %s AND e.resolved_at IS NULL AND e.remote_type = %s "
            "AND e.remote_id = ANY(%s::text[]) "  # what the index finds (see resolve)
            "AND e.remote_id = n.remote_id AND e.message = n.message "
            "RETURNING e.remote_type, e.remote_id",
            [run_id, ids, [p.message for p in found], [p.cause for p in found],
             [Jsonb(list(p.lines)) for p in found], integration_id, remote_type, ids]
        ).fetchall()
    kept = {(str(t), str(i)) for t, i in seen}
    new = [k for k in keys if k not in kept]
    if not new:
        return
    # A different problem supersedes the record's open one.
    resolve(conn, integration_id, [(t, i) for t, i in new if t is not None and i is not None])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ledger.integration_errors (integration_id, sync_run_id, step, "
            "remote_type, remote_id, message, cause, line_ids) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text[])",
            [(integration_id, run_id, step, t, i, latest[(t, i)].message,
              latest[(t, i)].cause, list(latest[(t, i)].lines) or None) for t, i in new])


def resolve(conn: psycopg.Connection[Any], integration_id: int,
            records: Iterable[tuple[str, str]]) -> int:
    """Settle the open entries of these (remote type, remote id) records; how many were open.

    A statement per record type, its ids an array that the open-entries index looks up one by
    one. A join with unnest() was planned as a nested loop over every open entry of the
    integration (a prepared statement's generic plan cannot see how long the array is): 0.2 to
    1 s a batch, 32 s of a large portal's first sync (the bench, with auto_explain)."""
    settled = 0
    for remote_type, ids in _by_type(records).items():
        settled += conn.execute(
            "UPDATE ledger.integration_errors SET resolved_at = now() "
            "WHERE integration_id = %s AND resolved_at IS NULL AND remote_type = %s "
            "AND remote_id = ANY(%s::text[])", [integration_id, remote_type, ids]).rowcount
    return settled


def _by_type(records: Iterable[tuple[str | None, str | None]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for remote_type, remote_id in records:
        if remote_type is not None and remote_id is not None:
            grouped.setdefault(remote_type, []).append(remote_id)
    return grouped


def open_ids(conn: psycopg.Connection[Any], integration_id: int, remote_type: str, *,
             every: bool = True) -> list[str]:
    """Records of one type that still fail, to read again by id: all of them (`every`: a full
    read, which must settle those it no longer finds), or those whose cause is not in the
    HubSpot record itself (an incremental read finds the others when HubSpot changes them)."""
    rows = conn.execute(
        "SELECT DISTINCT remote_id FROM ledger.integration_errors WHERE integration_id = %s "
        "AND remote_type = %s AND resolved_at IS NULL AND remote_id IS NOT NULL "
        "AND (%s OR cause IS DISTINCT FROM %s)",
        [integration_id, remote_type, every, ProblemCause.HUBSPOT.value]).fetchall()
    return sorted((str(r[0]) for r in rows), key=lambda i: (len(i), i))


def owners_of_lines(conn: psycopg.Connection[Any], integration_id: int, remote_type: str,
                    line_ids: Sequence[str]) -> set[str]:
    """Deals or invoices with an open problem that had one of these line items when they
    failed (the line deleted since: nothing else in HubSpot leads back to them)."""
    if not line_ids:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT remote_id FROM ledger.integration_errors WHERE integration_id = %s "
        "AND remote_type = %s AND resolved_at IS NULL AND line_ids && %s::text[]",
        [integration_id, remote_type, list(line_ids)]).fetchall()
    return {str(r[0]) for r in rows}


def count_open(conn: psycopg.Connection[Any], integration_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM ledger.integration_errors WHERE integration_id = %s "
        "AND resolved_at IS NULL", [integration_id]).fetchone()
    return int(row[0]) if row else 0


def count_waiting(conn: psycopg.Connection[Any], integration_id: int) -> int:
    """Open problems whose record is retried only when HubSpot changes it."""
    row = conn.execute(
        "SELECT count(*) FROM ledger.integration_errors WHERE integration_id = %s "
        "AND resolved_at IS NULL AND cause = %s",
        [integration_id, ProblemCause.HUBSPOT.value]).fetchone()
    return int(row[0]) if row else 0
