"""Running one phase and collecting what it cost: HubSpot's request log, the ledger's row
counters, and the worker process's own account of its time and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from hubspot_ledger_tools.bench.census import ReadSet
from hubspot_ledger_tools.bench.worker import read_result
from hubspot_ledger_tools.sandbox.testing import SandboxServer

# The rows a sync loads; everything else it writes is bookkeeping (staging, runs, the rate
# budget, tokens) and is shown apart.
LOADED_TABLES = ("items", "customers", "companies", "contracts", "performance_obligations",
                 "invoices", "invoice_lines", "integration_records", "integration_errors")
PROGRESS_SECONDS = 20.0

RowStats = dict[str, dict[str, int]]


@dataclass
class PhaseResult:
    name: str
    title: str
    dag_run_id: str
    reads: ReadSet
    requests: dict[str, int] = field(default_factory=dict)  # endpoint → count
    statuses: dict[str, int] = field(default_factory=dict)  # "200"/"429"/… → count
    server_ms: float = 0.0  # time the sandbox spent answering
    worker: dict[str, Any] = field(default_factory=dict)
    rows: RowStats = field(default_factory=dict)  # table → inserted/updated/deleted
    sync_run: dict[str, Any] = field(default_factory=dict)
    # The sandbox's latency model (median ms per endpoint class); None: answers at once.
    latency_ms: dict[str, float] | None = None
    scale: str = ""  # the sandbox scale it ran at (the targets differ by scale)

    @property
    def ok(self) -> bool:
        return bool(self.worker.get("ok"))

    @property
    def wall_s(self) -> float:
        return float(self.worker.get("wall_s", 0.0))


def row_stats(uri: str) -> RowStats:
    """Rows inserted, updated and deleted so far in each ledger table (PostgreSQL's counters,
    complete once the writers' sessions have ended)."""
    with psycopg.connect(uri, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone() != (0,):
            time.sleep(0.1)
        rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del "
                            "FROM pg_stat_user_tables WHERE schemaname = 'ledger'").fetchall()
    return {name: {"inserted": ins, "updated": upd, "deleted": dele}
            for name, ins, upd, dele in rows}


def row_delta(before: RowStats, after: RowStats) -> RowStats:
    zero = {"inserted": 0, "updated": 0, "deleted": 0}
    return {t: {k: v - before.get(t, zero)[k] for k, v in after[t].items()} for t in after
            if any(v != before.get(t, zero)[k] for k, v in after[t].items())}


def _progress(sb: SandboxServer, name: str, first_seq: int, stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.wait(PROGRESS_SECONDS):
        sent = sb.last_seq() - first_seq
        print(f"    [{name}] {time.monotonic() - start:6.0f} s: {sent:,} HubSpot requests so far",
              flush=True)


def run_worker(integration_id: int, dag_run_id: str, verbose: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "hubspot_ledger_tools.bench.worker",
               "--integration", str(integration_id), "--dag-run-id", dag_run_id]
    if verbose:
        command.append("--verbose")
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True,  # noqa: S603 - ours
                          env=os.environ.copy(), check=False)
    return read_result(proc.stdout) or {
        "ok": False, "error": f"the worker exited with {proc.returncode} and no result",
        "wall_s": 0.0, "steps": []}


def _request_log(sb: SandboxServer, since: int, result: PhaseResult) -> None:
    entries = sb.requests(since=since)
    result.requests = dict(Counter(str(e["endpoint"]) for e in entries))
    result.statuses = dict(Counter(str(e["status"]) for e in entries))
    result.server_ms = sum(float(e.get("duration_ms") or 0) for e in entries)


def _sync_run(uri: str, dag_run_id: str) -> dict[str, Any]:
    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute("SELECT status, counts, message FROM ledger.sync_runs "
                           "WHERE dag_run_id = %s ORDER BY id DESC LIMIT 1",
                           [dag_run_id]).fetchone()
    return {} if row is None else {"status": row[0], "counts": row[1], "message": row[2]}


def run_phase(sb: SandboxServer, uri: str, integration_id: int, name: str, title: str,
              reads: ReadSet, verbose: bool = False, *,
              latency_ms: dict[str, float] | None = None, scale: str = "") -> PhaseResult:
    """One DAG run's steps in a fresh worker process, measured."""
    result = PhaseResult(name=name, title=title, reads=reads,
                         dag_run_id=f"bench-{name}-{uuid.uuid4().hex[:8]}",
                         latency_ms=latency_ms, scale=scale)
    before, first_seq = row_stats(uri), sb.last_seq()
    stop = threading.Event()
    ticker = threading.Thread(target=_progress, args=(sb, name, first_seq, stop), daemon=True)
    ticker.start()
    try:
        result.worker = run_worker(integration_id, result.dag_run_id, verbose)
    finally:
        stop.set()
        ticker.join()
    _request_log(sb, first_seq, result)
    result.rows = row_delta(before, row_stats(uri))
    result.sync_run = _sync_run(uri, result.dag_run_id)
    return result
