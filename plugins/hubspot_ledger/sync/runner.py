"""Running one sync step of one integration: setup check, tokens, hook, write lock, counts.

The Airflow tasks (`sync.tasks`) are thin calls into `run_step`; tests and benchmarks call it
directly too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Callable
from typing import Any

from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import validate_setup
from hubspot_ledger.ledger.records import Integration, RemoteType
from hubspot_ledger.sync import steps
from hubspot_ledger.sync.extract import Window
from hubspot_ledger.sync.mapping import MappingContext
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


def _decide(ledger: LedgerHook, integration: Integration, remote_type: RemoteType,
            full_refresh: bool) -> dict[str, Any]:
    """Full or incremental for one object type (DESIGN "what a run reads"): a type without a
    complete read under the current settings gets one; otherwise what HubSpot changed since
    the last complete-or-incremental read of that type (less an overlap)."""
    cutoff = integration.cutoff_date
    full = {"since": None, "cutoff": cutoff.isoformat()}
    if full_refresh:
        return {**full, "why": "full read (full refresh requested)"}
    covered = ledger.coverage(integration.id, remote_type.value)
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
        ledger.set_run_mode(run_id, "window", window)
        log.info("Backfill window: records HubSpot last modified from %s to %s", *window)
        return Window(since=window[0], until=window[1]), integration.cutoff_date
    remote_type = STEP_TYPE[step]
    read = ledger.run_read(run_id, remote_type.value) or ledger.decide_run_read(
        run_id, remote_type.value, _decide(ledger, integration, remote_type, full_refresh))
    ledger.set_run_mode(run_id, "full" if full_refresh else "incremental")
    log.info("%s: %s", step, read["why"])
    cutoff = dt.date.fromisoformat(read["cutoff"])
    if read["since"] is None:
        return None, cutoff
    return Window(since=dt.datetime.fromisoformat(read["since"])), cutoff


def run_step(step: str, integration_id: int, dag_run_id: str, *, full_refresh: bool = False,
             window: tuple[dt.datetime, dt.datetime] | None = None,
             ledger: LedgerHook | None = None) -> dict[str, int]:
    """One step of one run. `window` (a backfill run's data interval) reads the records HubSpot
    last modified inside it; otherwise the run reads everything (first run, `full_refresh`) or
    what changed since the last full or incremental run."""
    ledger = ledger or LedgerHook()
    run_id = ledger.start_sync_run(integration_id, dag_run_id)
    try:
        integration, settings = validate_setup(integration_id, ledger=ledger)
        reads, cutoff = _reads(ledger, integration, run_id, step, full_refresh, window)
        integration = dataclasses.replace(integration, cutoff_date=cutoff)
        mapping = MappingContext.from_integration(integration, settings)
        limiter = ledger.rate_limiter(str(integration.remote_id))
        hook = HubSpotHook(token_source=IntegrationTokens(integration_id, ledger=ledger),
                           limiter=limiter)
        log.info("%s: integration %s (%s), portal %s, cutoff %s; waiting for its write lock",
                 step, integration.id, integration.organization_name, integration.remote_id,
                 integration.cutoff_date)
        try:
            with ledger.writer(integration_id) as writer:
                counts = STEPS[step](steps.StepContext(
                    integration=integration, settings=settings, mapping=mapping, hook=hook,
                    writer=writer, run_id=run_id, window=reads, connect=ledger.connect))
        finally:
            limiter.close()
        log.info("%s: %s HubSpot requests, %.1fs waited for the portal's rate budget", step,
                 f"{hook.requests_sent:,}", limiter.waited)
    except Exception as exc:
        ledger.note_run_failure(run_id, step, str(exc))
        raise
    if window is None and step in COMPLETES:
        ledger.cover(integration_id, STEP_TYPE[step].value, cutoff, run_id)
    ledger.add_run_counts(run_id, step, counts)
    ledger.clear_run_failure(run_id, step)
    return counts
