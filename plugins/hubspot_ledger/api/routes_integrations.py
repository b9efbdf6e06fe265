"""One integration: queue a sync, read and save its settings, read its errors log.

Thin over the service functions the CLI uses (`integration_settings`, `LedgerHook.errors.list`);
the handlers are plain `def`, so FastAPI runs their blocking ledger calls in its thread pool.

Every route acts only within the caller's organizations (api/auth.py): reading needs a member's
`viewer` role, saving settings `editor`, queueing a sync `operator` (Airflow admins: all), plus
Airflow's permission on the integration's DAG. Saving settings and queueing a sync change
something, so they take the Airflow token from the Authorization header only (no cookie-only
requests).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from hubspot_ledger.api.auth import Access, can_change, can_read, can_run
from hubspot_ledger.api.dag_runs import queue_run
from hubspot_ledger.api.schemas import (
    ErrorsLog,
    QueuedRun,
    Settings,
    SettingsUpdate,
    TriggerSync,
)
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import (
    ACCOUNTS,
    get_settings,
    missing_settings,
    save_settings,
    validate_setup,
)
from hubspot_ledger.schedule import checked as checked_schedule
from hubspot_ledger.schedule import get_schedule, save_schedule

router = APIRouter(prefix="/{integration_id}", tags=["integration"])


@router.post("/trigger-sync/", status_code=status.HTTP_202_ACCEPTED,
             summary="Queue a run of the integration's DAG")
def trigger_sync(access: Annotated[Access, Depends(can_run)],
                 body: TriggerSync | None = None) -> QueuedRun:
    # Checked up front (the run's first task checks again): a run doomed to fail at
    # validate_setup would only tell the caller later, and in a task log.
    validate_setup(access.integration_id)
    full_refresh = body.full_refresh if body else False
    run_id, state = queue_run(access.dag_id, conf={"full_refresh": full_refresh},
                              user_name=access.user.get_name())
    return QueuedRun(dag_id=access.dag_id, dag_run_id=run_id, state=state)


@router.get("/settings/", summary="The integration's settings")
def read_settings(access: Annotated[Access, Depends(can_read)]) -> Settings:
    settings = get_settings(access.integration_id)
    return Settings.of(settings, missing_settings(settings), get_schedule(access.integration_id))


@router.api_route("/settings/", methods=["PUT", "POST"], summary="Save settings (partial)")
def write_settings(access: Annotated[Access, Depends(can_change)],
                   body: SettingsUpdate) -> Settings:
    accounts = {a.field: getattr(body, a.field) for a in ACCOUNTS}
    # The schedule is checked before anything is saved: all or nothing.
    schedule = checked_schedule(body.schedule) if body.schedule is not None else None
    settings = save_settings(access.integration_id, accounts=accounts, company=body.company,
                             sync_invoices=body.sync_invoices,
                             invoice_parties=body.invoice_parties, won_stages=body.won_stages,
                             recognition=body.recognition)
    if schedule is not None:
        save_schedule(access.integration_id, schedule)
    return Settings.of(settings, missing_settings(settings), get_schedule(access.integration_id))


@router.get("/errors/", summary="The integration's open problems (all=true: the whole "
            "errors log), newest first")
def read_errors(access: Annotated[Access, Depends(can_read)],
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                all: Annotated[bool, Query(description="include resolved entries and "
                                                        "warnings")] = False) -> ErrorsLog:
    return ErrorsLog.of(access.integration_id,
                        LedgerHook().errors.list(access.integration_id, limit=limit,
                                                 open_only=not all))
