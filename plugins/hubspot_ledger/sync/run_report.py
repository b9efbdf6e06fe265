"""The report task: settle a run's sync_runs row and render its counts for the task log."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import tenacity

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.errors import LedgerUnavailableError
from hubspot_ledger.load.records import SyncRunStatus
from hubspot_ledger.load.writer import Change

STEP_ORDER = ("invoices", "products", "companies", "deals")
# The report task has no Airflow retries (it fails the DAG run on purpose when a step failed),
# so a ledger connection lost while it settles (a restart, a fail-over) is retried here, on a
# new connection, 0.5 s, 1 s, 2 s, 4 s and 5 s apart: a restarting server has about 12 s to
# come back. Settling is idempotent. Without it, a run whose every step landed would end
# failed and its row stay "running" until the next run.
SETTLE_ATTEMPTS = 6

log = logging.getLogger(__name__)


def settle_run(integration_id: int, dag_run_id: str, *, ledger: LedgerHook | None = None
               ) -> tuple[bool, str]:
    """Finish the run's row (success only when every expected step recorded its counts and
    none failed) and clear its staging. Returns (succeeded, report text)."""
    if ledger is None:
        for attempt in tenacity.Retrying(
                # A dropped session, or a server still restarting when reconnecting.
                retry=tenacity.retry_if_exception_type(
                    (psycopg.OperationalError, LedgerUnavailableError)),
                wait=tenacity.wait_exponential(multiplier=0.5, max=5),
                stop=tenacity.stop_after_attempt(SETTLE_ATTEMPTS), reraise=True,
                before_sleep=lambda state: log.warning(
                    "Lost the ledger connection while settling the run (%s); trying again",
                    type(state.outcome.exception()).__name__ if state.outcome else "?")):
            with attempt, LedgerHook() as own:
                return settle_run(integration_id, dag_run_id, ledger=own)
        raise AssertionError("unreachable: the last try re-raises")
    run_id = ledger.runs.start(integration_id, dag_run_id)
    run = ledger.runs.get(run_id)
    counts: dict[str, dict[str, int]] = run["counts"] or {}
    expected = ["products", "companies", "deals"]
    # The branch's decision for this run (item 8 of issue 10); a run driven without the branch
    # (tests, tools) falls back to the toggle.
    invoices = run.get("sync_invoices")
    if invoices is None:
        invoices = ledger.settings.get(integration_id).sync_invoices
    if invoices:
        expected.insert(0, "invoices")
    missing = [s for s in expected if s not in counts]
    failures: dict[str, str] = run["failures"] or {}
    ok = not missing and not failures
    message = "; ".join(f"{step}: {why}" for step, why in failures.items()) or (
        f"did not finish: {', '.join(missing)}" if missing else None)
    ledger.runs.finish(run_id, SyncRunStatus.SUCCESS if ok else SyncRunStatus.FAILED,
                           message)
    ledger.runs.clear_staging(run_id)
    errors = ledger.runs.count_errors(run_id)
    open_problems, waiting = ledger.errors.count_open_by_cause(integration_id)
    return ok, render(run_id, integration_id, ok, counts, errors, message,
                      reads=run.get("reads") or {}, open_problems=open_problems,
                      waiting=waiting)


def render(run_id: int, integration_id: int, ok: bool, counts: dict[str, Any], errors: int,
           message: str | None, *, reads: dict[str, Any] | None = None,
           open_problems: int | None = None, waiting: int = 0) -> str:
    columns = [c.value for c in Change]
    head = f"{'step':<10}" + "".join(f"{c:>11}" for c in columns)
    lines = [f"Sync run {run_id} of integration {integration_id}: "
             f"{'success' if ok else 'FAILED'}", head]
    for step in STEP_ORDER:
        if step in counts:
            lines.append(f"{step:<10}" + "".join(f"{int(counts[step].get(c, 0)):>11,}"
                                                  for c in columns))
    if message:
        lines.append(f"Why it failed: {message}")
    for remote_type, read in sorted((reads or {}).items()):
        lines.append(f"Read {remote_type}s: {read.get('why', '?')}")
    lines.append(f"Errors logged by this run: {errors:,}")
    if open_problems is not None:
        # Issue 12: a record whose own data fails is read again when HubSpot changes it.
        lines.append(f"Open problems (records that still fail): {open_problems:,}"
                     + (f", {waiting:,} of them retried when the record changes in HubSpot, "
                        "the others every run" if waiting else "")
                     + (f" (see: hubspot-ledger errors --integration {integration_id})"
                        if open_problems else ""))
    return "\n".join(lines)
