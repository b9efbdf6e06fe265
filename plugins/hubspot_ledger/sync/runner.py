"""Running one sync step of one integration: setup check, tokens, hook, write lock, counts.

The Airflow tasks (`sync.tasks`) are thin calls into `run_step`; tests and benchmarks call it
directly too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable

from hubspot_ledger.hooks.hubspot import HubSpotHook
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import validate_setup
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


def _reads(ledger: LedgerHook, integration_id: int, run_id: int, full_refresh: bool,
           window: tuple[dt.datetime, dt.datetime] | None) -> Window | None:
    if window is not None:
        ledger.set_run_mode(run_id, "window", window)
        log.info("Backfill window: records HubSpot last modified from %s to %s", *window)
        return Window(since=window[0], until=window[1])
    since = None if full_refresh else ledger.incremental_since(integration_id, run_id,
                                                              incremental_overlap())
    ledger.set_run_mode(run_id, "full" if since is None else "incremental")
    if since is None:
        log.info("Full read: everything since the cutoff")
        return None
    log.info("Incremental read: what HubSpot changed since %s", since.isoformat())
    return Window(since=since)


def run_step(step: str, integration_id: int, dag_run_id: str, *, full_refresh: bool = False,
             window: tuple[dt.datetime, dt.datetime] | None = None,
             ledger: LedgerHook | None = None) -> dict[str, int]:
    """One step of one run. `window` (a backfill run's data interval) reads the records HubSpot
    last modified inside it; otherwise the run reads everything (first run, `full_refresh`) or
    what changed since the last full or incremental run."""
    ledger = ledger or LedgerHook()
    run_id = ledger.start_sync_run(integration_id, dag_run_id)
    try:
        reads = _reads(ledger, integration_id, run_id, full_refresh, window)
        integration, settings = validate_setup(integration_id, ledger=ledger)
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
    ledger.add_run_counts(run_id, step, counts)
    ledger.clear_run_failure(run_id, step)
    return counts
