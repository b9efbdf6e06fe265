"""Running one sync step of one integration: setup check, tokens, hook, write lock, counts.

The Airflow tasks (`sync.tasks`) are thin calls into `run_step`; tests and benchmarks call it
directly too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hubspot_ledger.backfill_windows import BEGINNING, reach
from hubspot_ledger.extract import closed_won
from hubspot_ledger.extract.reads import Window
from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import validate_setup
from hubspot_ledger.load.records import (
    WON_ALL_PIPELINES,
    WON_CLOSEDWON,
    Integration,
    RemoteType,
)
from hubspot_ledger.mapping import MappingContext
from hubspot_ledger.store.webhooks import READ_KEY as WEBHOOK_READ
from hubspot_ledger.store.webhooks import named_deals
from hubspot_ledger.sync import steps
from hubspot_ledger.tokens import IntegrationTokens

log = logging.getLogger(__name__)

# How far back before the last successful run an incremental run starts reading: HubSpot's
# search index lags behind writes, and a record changed during the last run must not be missed.
def incremental_overlap() -> dt.timedelta:
    return dt.timedelta(
        seconds=float(os.environ.get("HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS", "900")))

STEPS: dict[str, Callable[[steps.StepContext], dict[str, int]]] = {
    "invoices": steps.sync_invoices,
    "products": steps.sync_products,
    "companies": steps.sync_companies,
    "deals": steps.sync_deals,
}
# The object type whose coverage a step reads under. Companies are reached only through the
# qualifying deals (R-COMP-1), so the companies and deals steps share the deals' coverage; the
# step named last completes the read.
STEP_TYPE = {"invoices": RemoteType.INVOICE, "products": RemoteType.PRODUCT,
             "companies": RemoteType.DEAL, "deals": RemoteType.DEAL}
COMPLETES = {"invoices", "products", "deals"}
# A step's early reads (steps.StepContext.early): the invoices step starts two, the products
# step one; threads start only when a step submits a read.
EARLY_READ_THREADS = 2


def _decide(ledger: LedgerHook, integration: Integration, remote_type: RemoteType,
            full_refresh: bool) -> dict[str, Any]:
    """Full or incremental for one object type (DESIGN "what a run reads"): a type without a
    complete read under the current settings gets one; otherwise what HubSpot changed since
    the last complete-or-incremental read of that type (less an overlap)."""
    cutoff = integration.cutoff_date
    full = {"since": None, "cutoff": cutoff.isoformat()}
    if full_refresh:
        return {**full, "why": "full read (full refresh requested)"}
    covered = ledger.runs.coverage(integration.id, remote_type.value)
    if covered is None:
        why = ("full read (invoice sync was off or never read completely)"
               if remote_type is RemoteType.INVOICE else "full read (first complete read)")
        return {**full, "why": why}
    covered_cutoff, read_from = covered
    if remote_type is not RemoteType.PRODUCT and covered_cutoff != cutoff:
        return {**full, "why": f"full read (cutoff moved from {covered_cutoff} to {cutoff})"}
    since = read_from - incremental_overlap()
    return {"since": since.isoformat(), "cutoff": cutoff.isoformat(),
            "why": f"incremental: what HubSpot changed since {since:%Y-%m-%d %H:%M:%S} UTC"}


def _reads(ledger: LedgerHook, integration: Integration, run_id: int, step: str,
           full_refresh: bool, window: tuple[dt.datetime, dt.datetime] | None
           ) -> tuple[Window | None, dt.date]:
    """What this step reads, and under which cutoff. A backfill run reads what HubSpot last
    modified inside its window; other runs follow the type's coverage, decided once per run."""
    if window is not None:
        # The window holding the cutoff reads from the beginning, the latest one up to now
        # (backfill_windows.reach says why).
        since, until = reach(window, integration.cutoff_date, dt.datetime.now(dt.UTC))
        ledger.runs.set_mode(run_id, "window", window)
        log.info("Backfill window %s to %s: records HubSpot last modified from %s to %s",
                 *window, "the beginning" if since == BEGINNING else since, until or "now")
        return Window(since=since, until=until), integration.cutoff_date
    remote_type = STEP_TYPE[step]
    read = ledger.runs.read(run_id, remote_type.value) or ledger.runs.decide_read(
        run_id, remote_type.value, _decide(ledger, integration, remote_type, full_refresh))
    ledger.runs.set_mode(run_id, "full" if full_refresh else "incremental")
    log.info("%s: %s", step, read["why"])
    cutoff = dt.date.fromisoformat(read["cutoff"])
    if read["since"] is None:
        return None, cutoff
    return Window(since=dt.datetime.fromisoformat(read["since"])), cutoff


def _won_stages(ledger: LedgerHook, run_id: int, hook: HubSpotHook, setting: str
                ) -> frozenset[str]:
    """The won stages of this run (issue 14): with `all-pipelines` the deal pipelines are read
    once per run, by the first deal step, and the later step follows that decision."""
    if setting == WON_CLOSEDWON:
        return closed_won.DEFAULT_WON
    # Kept with the run's reads, so the run report says "Read won deal stages: …".
    key = "won deal stage"
    decided = ledger.runs.read(run_id, key)
    if decided is None:
        # An explicit list was checked against the pipelines by validate_setup this run.
        stages = (sorted(closed_won.resolve_won_stages(hook, setting))
                  if setting == WON_ALL_PIPELINES else setting.split(","))
        decided = ledger.runs.decide_read(run_id, key, {
            "setting": setting, "stages": stages,
            "why": f"{', '.join(stages)} (won stages setting: {setting})"})
    log.info("Won deal stages: %s", ", ".join(decided["stages"]))
    return frozenset(decided["stages"])


def run_step(step: str, integration_id: int, dag_run_id: str, *, full_refresh: bool = False,
             window: tuple[dt.datetime, dt.datetime] | None = None,
             ledger: LedgerHook | None = None) -> dict[str, int]:
    """One step of one run. `window` (a backfill run's data interval) reads the records HubSpot
    last modified inside it; otherwise the run reads everything (first run, `full_refresh`) or
    what changed since the last full or incremental run."""
    if ledger is None:
        # Its connection closes with the step: a task holds only what its pool slots count
        # (ledger_pool), also when several steps run in one process (`hubspot-ledger sync`).
        with LedgerHook() as own:
            return run_step(step, integration_id, dag_run_id, full_refresh=full_refresh,
                            window=window, ledger=own)
    run_id = ledger.runs.start(integration_id, dag_run_id)
    try:
        integration, settings = validate_setup(integration_id, ledger=ledger)
        reads, cutoff = _reads(ledger, integration, run_id, step, full_refresh, window)
        integration = dataclasses.replace(integration, cutoff_date=cutoff)
        mapping = MappingContext.from_integration(integration, settings)
        limiter = ledger.rate_limiter(str(integration.remote_id))
        hook = HubSpotHook(token_source=IntegrationTokens(integration_id, ledger=ledger),
                           limiter=limiter)
        named: frozenset[str] = frozenset()
        if STEP_TYPE[step] is RemoteType.DEAL:
            mapping = dataclasses.replace(mapping, won_stages=_won_stages(
                ledger, run_id, hook, settings.won_stages))
            if window is None:
                named = named_deals(ledger.runs.read(run_id, WEBHOOK_READ))
        log.info("%s: integration %s (%s), portal %s, cutoff %s; taking its write lock",
                 step, integration.id, integration.organization_name, integration.remote_id,
                 integration.cutoff_date)
        try:
            with ledger.writer(integration_id, dag_run_id) as writer, ThreadPoolExecutor(
                    max_workers=EARLY_READ_THREADS, thread_name_prefix=f"{step}-early") as early:
                counts = STEPS[step](steps.StepContext(
                    integration=integration, settings=settings, mapping=mapping, hook=hook,
                    writer=writer, run_id=run_id, connect=ledger.new_connection, early=early,
                    window=reads, retry_open=window is None, runs=ledger.runs,
                    named_deals=named))
        finally:
            limiter.close()
            hook.close()
        log.info("%s: %s HubSpot requests, %.1fs waited for the portal's rate budget", step,
                 f"{hook.requests_sent:,}", limiter.waited)
    except Exception as exc:
        ledger.runs.note_failure(run_id, step, str(exc))
        raise
    if window is None and step in COMPLETES:
        ledger.runs.cover(integration_id, STEP_TYPE[step].value, cutoff, run_id)
    ledger.runs.add_counts(run_id, step, counts)
    ledger.runs.clear_failure(run_id, step)
    return counts


# -- runs killed mid-way (issue 13) -------------------------------------------------------------
#
# A run's sync_runs row is settled by its report task. A run whose report never runs stays
# `running`: its `hubspot-ledger sync` process was killed (SIGKILL, OOM), or Airflow ended the
# DAG run without it (DAG run time-out, marked failed by hand, deleted). The next run of the
# integration settles such rows as failed, by this rule:
#
#   another `running` row of the integration is settled when (1) no process holds its liveness
#   lock and (2) its DAG run cannot make progress any more: Airflow has no such DAG run, or says
#   it is finished, or it was run by `hubspot-ledger sync` (whose process holds the lock from
#   before the row exists until the run ends, so a free lock means the process is gone).
#
# A scheduled, triggered or backfill run that is alive but between two tasks (or waiting for a
# retry) holds no lock, but Airflow says its DAG run is `running` or `queued`: it is left alone,
# so concurrent backfill windows never settle each other.

# What Airflow says of a DAG run: "running", "queued", "success", "failed"; "gone" for a
# `hubspot-ledger sync` run whose process is gone; None when Airflow has no such DAG run.
DagRunState = Callable[[str], str | None]

_whole_run: list[DagRunState] = []  # set inside attend_whole_run: how to ask Airflow


@contextlib.contextmanager
def attend(integration_id: int, dag_run_id: str) -> Iterator[None]:
    """Hold the run's liveness lock while a task of it works (taken before the task creates
    the run's row). Inside `attend_whole_run` the caller holds it for the whole run already."""
    if _whole_run:
        yield
        return
    with LedgerHook().locks.run_alive(integration_id, dag_run_id):
        yield


@contextlib.contextmanager
def attend_whole_run(dag_run_state: DagRunState) -> Iterator[None]:
    """Every task of the run executes in this process (`dag.test()`), whose caller holds the
    run's liveness lock from before the run exists until it ends; `dag_run_state` (reading
    Airflow's metadata database) tells the killed-run rule what Airflow knows of other runs."""
    _whole_run.append(dag_run_state)
    try:
        yield
    finally:
        _whole_run.clear()


def whole_run_state() -> DagRunState | None:
    """The DAG-run lookup of `attend_whole_run`, when this process runs the whole run."""
    return _whole_run[-1] if _whole_run else None


_WHY = {
    None: "Airflow has no such DAG run any more",
    "success": "its DAG run ended without settling it",
    "failed": "its DAG run failed or timed out before its report ran",
    "gone": "the `hubspot-ledger sync` process running it stopped without finishing it "
            "(killed?)",
}


def settle_interrupted_runs(integration_id: int, dag_run_id: str, dag_run_state: DagRunState,
                            *, ledger: LedgerHook | None = None) -> list[str]:
    """Settle the integration's other `running` rows that no run will finish (the rule
    above), as failed with a message saying why. Returns their DAG run ids."""
    ledger = ledger or LedgerHook()
    settled: list[str] = []
    for _, other in ledger.locks.unattended_runs(integration_id, dag_run_id):
        try:
            state = dag_run_state(other)
        except Exception:  # noqa: BLE001 - when in doubt, leave the run alone
            log.warning("Could not ask Airflow about DAG run %s; left as it is", other,
                        exc_info=True)
            continue
        if state not in _WHY:
            continue  # running or queued: Airflow will still run (or time out) its tasks
        message = (f"interrupted: {_WHY[state]}; the next run ({dag_run_id}) took over "
                   "and marked it failed")
        if ledger.locks.settle_interrupted_run(integration_id, other, message):
            log.warning("Run %s of integration %s was still `running`: %s", other,
                        integration_id, message)
            settled.append(other)
    return settled
