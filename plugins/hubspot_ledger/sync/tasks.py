"""Task bodies of an integration's DAG: thin calls into the sync layer.

Each takes the integration id (fixed when the DAG is built) and, where useful, the Airflow
context. The work is in `sync.runner` and `sync.steps`; imports are deferred so that parsing
the DAG file stays cheap.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from hubspot_ledger.errors import NotFound, ReconnectRequired, SetupIncomplete, UserFacingError

log = logging.getLogger(__name__)

INVOICES_TASK = "sync_invoices"
PRODUCTS_TASK = "sync_products"
COMPANIES_TASK = "sync_companies"
DEALS_TASK = "sync_deals"

R = TypeVar("R")


def _attended(body: Callable[..., R]) -> Callable[..., R]:
    """A task body that holds its run's liveness lock while it works (sync.runner, "runs
    killed mid-way"): no other run of the integration takes this run for dead meanwhile."""
    @functools.wraps(body)
    def task(integration_id: int, **context: Any) -> R:
        from hubspot_ledger.sync.runner import attend

        with attend(integration_id, _dag_run_id(context)):
            return body(integration_id, **context)
    return task


def _fail_without_retry(exc: UserFacingError) -> NoReturn:
    """A person must act (setup, reconnect): retrying would only repeat the failure."""
    from airflow.sdk.exceptions import AirflowFailException

    log.error("%s", exc)
    raise AirflowFailException(str(exc)) from None


@_attended
def validate_setup(integration_id: int, **context: Any) -> None:
    """R-SET-3: the run stops here with "Setup incomplete: …" when a setting is missing."""
    from hubspot_ledger.integration_settings import validate_setup as check

    try:
        integration, settings = check(integration_id, won_stages=True)
    except (SetupIncomplete, ReconnectRequired, NotFound) as exc:
        _note_failure(integration_id, context, "validate_setup", exc)
        _fail_without_retry(exc)
    log.info("Setup of integration %s (%s) is complete: portal %s, cutoff %s, invoices %s",
             integration.id, integration.organization_name, integration.remote_id,
             integration.cutoff_date, "on" if settings.sync_invoices else "off")


@_attended
def refresh_token(integration_id: int, **context: Any) -> None:
    """R-AUTH-6: refresh the access token when it is near expiry, before any sync step."""
    from hubspot_ledger.hooks.hubspot import HubSpotError
    from hubspot_ledger.tokens import IntegrationTokens

    try:
        IntegrationTokens(integration_id).access_token()
    except ReconnectRequired as exc:
        _note_failure(integration_id, context, "refresh_token", exc)
        _fail_without_retry(exc)
    except HubSpotError as exc:
        # Temporary (Airflow retries) or the deployment's app refused (fails once): either way
        # the run's report must say why; a retry that succeeds clears it.
        _note_failure(integration_id, context, "refresh_token", exc)
        raise
    if (context.get("ti") is not None and getattr(context["ti"], "try_number", 1) > 1):
        _clear_failure(integration_id, context, "refresh_token")
    log.info("HubSpot access token of integration %s is valid", integration_id)


@_attended
def choose_invoice_branch(integration_id: int, **context: Any) -> list[str]:
    """R-SYNC-3: with the toggle off, the invoice step is skipped and makes no request.

    The decision is recorded on the run, so the report judges the run by it (not by the toggle
    as it may be later). While the toggle is off the invoices are not followed, so their
    coverage is dropped: turning it on again reads every qualifying invoice."""
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.load.records import RemoteType

    with LedgerHook() as ledger:
        on = ledger.settings.get(integration_id).sync_invoices
        run_id = ledger.runs.start(integration_id, _dag_run_id(context))
        ledger.runs.set_invoices(run_id, on)
        _take_webhook_events(ledger, integration_id, run_id, context)
        _settle_interrupted_runs(ledger, integration_id, context)
        if not on:
            ledger.runs.drop_coverage(integration_id, RemoteType.INVOICE.value)
    log.info("Invoice sync for integration %s: %s", integration_id, "on" if on else "off")
    return [INVOICES_TASK, PRODUCTS_TASK] if on else [PRODUCTS_TASK]


def _step_task(step: str) -> Callable[..., None]:
    """The body of the task `sync_<step>`: one sync step (R-SYNC-2 orders them in the DAG)."""
    def body(integration_id: int, **context: Any) -> None:
        _run_step(step, integration_id, context)
    body.__name__ = body.__qualname__ = f"sync_{step}"
    return _attended(body)


sync_invoices = _step_task("invoices")
sync_products = _step_task("products")
sync_companies = _step_task("companies")
sync_deals = _step_task("deals")


@_attended
def report(integration_id: int, **context: Any) -> None:
    """Logs the run's counts, settles its sync_runs row, and fails the DAG run when a step did
    not finish (this task runs whatever happened upstream, so it must say so itself)."""
    from hubspot_ledger.sync.run_report import settle_run

    ok, text = settle_run(integration_id, _dag_run_id(context))
    for line in text.splitlines():
        log.info("%s", line)
    if not ok:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("The sync did not complete: see the failed task's log and "
                                   "the errors log (hubspot-ledger errors)")


def _take_webhook_events(ledger: Any, integration_id: int, run_id: int,
                         context: dict[str, Any]) -> None:
    """Issue 14: this run reads what HubSpot changed, after this task: it takes every webhook
    event received so far (store.webhooks.take), whichever way the run started (its asset, its
    cron, a trigger). An event arriving from now on asks Airflow for another run, which waits
    for this one (max_active_runs=1): nothing this run may miss waits for the schedule. A
    backfill window reads its window only, so it takes nothing. Never fails the task: events
    left pending are taken by the next run."""
    dag_run = context.get("dag_run")
    if "backfill" in str(getattr(dag_run, "run_type", "") or "").lower():
        return
    try:
        taken = ledger.webhooks.take(integration_id, run_id, _dag_run_id(context))
    except Exception:  # noqa: BLE001 - the sync matters more than the trigger's bookkeeping
        log.warning("Could not take the pending webhook events; the next run will",
                    exc_info=True)
        return
    if taken is not None:
        log.info("HubSpot webhook events taken by this run: %s", taken.describe())


def _settle_interrupted_runs(ledger: Any, integration_id: int, context: dict[str, Any]
                             ) -> None:
    """This run has started: earlier runs of the integration that can no longer finish are
    marked failed (sync.runner, "runs killed mid-way"). Never fails the task."""
    from hubspot_ledger.sync.runner import settle_interrupted_runs, whole_run_state

    try:
        state = whole_run_state() or _airflow_dag_run_state(context)
        if state is not None:
            settle_interrupted_runs(integration_id, _dag_run_id(context), state,
                                    ledger=ledger)
    except Exception:  # noqa: BLE001 - housekeeping must not stop this run
        log.warning("Could not settle earlier interrupted runs", exc_info=True)


def _airflow_dag_run_state(context: dict[str, Any]) -> Callable[[str], str | None] | None:
    """What Airflow says of another run of this DAG, asked through the task's own channel to
    Airflow (the Task SDK; a task never reads the metadata database)."""
    ti = context.get("ti")
    if ti is None or not hasattr(ti, "get_dagrun_state"):
        return None
    dag_id = str(ti.dag_id)

    def state(run_id: str) -> str | None:
        if not ti.get_dr_count(dag_id=dag_id, run_ids=[run_id]):
            return None
        value = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
        return str(getattr(value, "value", value))
    return state


def _dag_run_id(context: dict[str, Any]) -> str:
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id")
    return str(run_id or "manual")


def backfill_window(run_type: str, start: dt.datetime | None, end: dt.datetime | None
                    ) -> tuple[dt.datetime, dt.datetime] | None:
    """A backfill run reads the records HubSpot last modified inside its data interval; every
    other run reads everything or what changed since the last run. Windows of one backfill
    never overlap, and their union is the backfilled history."""
    if "backfill" not in run_type.lower() or start is None or end is None or end <= start:
        return None
    return start, end


def _clear_failure(integration_id: int, context: dict[str, Any], task: str) -> None:
    """A retry of `task` succeeded: its earlier failure no longer fails the run."""
    from hubspot_ledger.hooks.ledger import LedgerHook

    with LedgerHook() as ledger:
        ledger.runs.clear_failure(ledger.runs.start(integration_id, _dag_run_id(context)), task)


def _note_failure(integration_id: int, context: dict[str, Any], task: str,
                  exc: Exception) -> None:
    """Record why the run stopped before syncing, for the report; never masks `exc`."""
    from hubspot_ledger.hooks.ledger import LedgerHook

    try:
        if isinstance(exc, NotFound):
            return  # no integration, no run row to write to
        with LedgerHook() as ledger:
            ledger.runs.note_failure(ledger.runs.start(integration_id, _dag_run_id(context)),
                                    task, str(exc))
    except Exception:  # noqa: BLE001 - the original failure is what the operator must see
        log.warning("Could not record the failure in the sync run", exc_info=True)


def busy_delay() -> dt.timedelta:
    """How long a step that found another run of its integration writing gives back its worker
    before it tries again."""
    return dt.timedelta(seconds=float(os.environ.get("HUBSPOT_LEDGER_BUSY_DELAY_SECONDS", "30")))


def _wait_for_the_writer(busy: Exception) -> NoReturn:
    """Another run of the integration is writing: backfill windows side by side (the UI's
    backfill form runs 10 at once unless told otherwise), or a `hubspot-ledger sync` beside a
    scheduled run. The lock never waits; the task is rescheduled instead, giving its worker
    slot back. A reschedule is not a failed try, so waiting for one's turn never uses up the
    retries that HubSpot's outages need; the DAG run's time-out still bounds it."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    when = dt.datetime.now(dt.UTC) + busy_delay()
    log.info("%s; rescheduled for %s", busy, when.isoformat(timespec="seconds"))
    raise AirflowRescheduleException(when) from None


def _run_step(step: str, integration_id: int, context: dict[str, Any]) -> None:
    """One sync step under the integration's write lock; its counts go to the run's row."""
    from hubspot_ledger.hooks.hubspot import HubSpotError
    from hubspot_ledger.load.errors import LedgerBusyError
    from hubspot_ledger.sync.runner import run_step

    params = context.get("params") or {}
    dag_run = context.get("dag_run")
    window = backfill_window(str(getattr(dag_run, "run_type", "") or ""),
                             context.get("data_interval_start"),
                             context.get("data_interval_end"))
    from airflow.sdk.exceptions import AirflowTaskTimeout

    try:
        counts = run_step(step, integration_id, _dag_run_id(context),
                          full_refresh=bool(params.get("full_refresh", False)), window=window)
    except (SetupIncomplete, ReconnectRequired, NotFound) as exc:
        _fail_without_retry(exc)
    except LedgerBusyError as exc:
        _wait_for_the_writer(exc)
    except HubSpotError as exc:
        # Raised after the hook's own retries; Airflow's task retries get another go.
        log.error("%s", exc)
        raise
    except AirflowTaskTimeout:
        # Not an Exception: run_step did not record it. The report must say why.
        task = getattr(context.get("ti"), "task", None)
        limit = getattr(task, "execution_timeout", None)
        _note_failure(integration_id, context, step,
                      RuntimeError(f"timed out after {limit or 'its execution_timeout'} "
                                   "(HUBSPOT_LEDGER_STEP_TIMEOUT_SECONDS); Airflow retries it"))
        raise
    log.info("%s done: %s", step, ", ".join(f"{k} {v:,}" for k, v in counts.items()))
