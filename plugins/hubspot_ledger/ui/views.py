"""What the operator page shows, gathered from the ledger and Airflow for one user.

Visibility and permissions are api/auth.py's `authorize` (membership + the auth manager's DAG
permission), asked once per integration and action: the page has no permission model of its
own. An integration the user may not read is simply not listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from fastapi import HTTPException

from hubspot_ledger.api.auth import CHANGE, CONNECT, READ, RUN, Access, Need, authorize
from hubspot_ledger.errors import UserFacingError
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import ACCOUNTS, missing_settings
from hubspot_ledger.load.records import Integration, IntegrationSettings
from hubspot_ledger.mapping.context import normalize_ui_domain
from hubspot_ledger.sync.run_report import render
from hubspot_ledger.ui import queries
from hubspot_ledger.ui.airflow_meta import DagInfo, dag_infos

# HubSpot's object type ids, as its record URLs name them.
OBJECT_TYPE_IDS = {"contact": "0-1", "company": "0-2", "deal": "0-3", "product": "0-7",
                   "line_item": "0-8", "invoice": "0-53"}


def record_url(ui_domain: str | None, portal_id: str | None, remote_type: str | None,
               remote_id: str | None) -> str | None:
    """The record's page in HubSpot, e.g. https://app.hubspot.com/contacts/123/record/0-3/45;
    None when the entry names no record."""
    type_id = OBJECT_TYPE_IDS.get(remote_type or "")
    if not (type_id and portal_id and remote_id):
        return None
    try:
        host = normalize_ui_domain(ui_domain)
    except ValueError:
        host = normalize_ui_domain(None)
    return (f"https://{host}/contacts/{quote(portal_id, safe='')}/record/{type_id}/"
            f"{quote(remote_id, safe='')}")


def allowed(user: BaseUser, integration_id: int, need: Need) -> Access | None:
    """api/auth.py's answer, as a value: None when refused (404 or 403)."""
    try:
        return authorize(integration_id, user, need)
    except (HTTPException, UserFacingError):
        return None


@dataclass(frozen=True)
class Row:
    """One integration on the overview."""

    integration: Integration
    dag: DagInfo
    last_sync: dict[str, Any] | None
    open_problems: int


@dataclass
class Detail:
    """One integration's page."""

    integration: Integration
    dag: DagInfo
    settings: IntegrationSettings
    missing: list[str]
    last_sync: dict[str, Any] | None
    report: str | None
    problems: list[dict[str, Any]]
    account_choices: dict[str, list[queries.Choice]]
    company_choices: list[queries.Choice]
    may: dict[str, bool] = field(default_factory=dict)
    submitted: dict[str, Any] | None = None  # a refused form's values, shown again


def visible(user: BaseUser, ledger: LedgerHook) -> list[Access]:
    return [access for summary in ledger.integrations.list(timeout_seconds=10)
            if (access := allowed(user, summary.id, READ)) is not None]


def overview(user: BaseUser) -> list[Row]:
    ledger = LedgerHook()
    accesses = visible(user, ledger)
    dags = dag_infos([a.dag_id for a in accesses])
    return [Row(integration=ledger.integrations.get(a.integration_id), dag=dags[a.dag_id],
                last_sync=ledger.runs.latest(a.integration_id),
                open_problems=ledger.errors.count_open(a.integration_id))
            for a in accesses]


def _report(ledger: LedgerHook, run: dict[str, Any] | None) -> str | None:
    if run is None:
        return None
    return render(int(run["id"]), int(run["integration_id"]), run["status"] == "success",
                  run["counts"] or {}, ledger.runs.count_errors(int(run["id"])), run["message"],
                  reads=run.get("reads") or {})


def detail(access: Access, submitted: dict[str, Any] | None = None) -> Detail:
    """The integration page's content; `submitted`: what a refused settings form sent (shown
    again with the error, instead of the saved values)."""
    ledger = LedgerHook()
    integration = ledger.integrations.get(access.integration_id)
    settings = ledger.settings.get(access.integration_id)
    with ledger.session() as conn:
        problems = queries.open_problems(conn, access.integration_id)
        accounts = queries.accounts(conn, integration.organization_id)
        companies = queries.companies(conn, integration.organization_id)
    choices = {a.field: [c for c in accounts if c.kind in {t.value for t in a.types}]
               for a in ACCOUNTS}
    last = ledger.runs.latest(access.integration_id)
    shown = [{"problem": p, "url": record_url(integration.ui_domain, integration.remote_id,
                                              p.remote_type, p.remote_id)} for p in problems]
    page = Detail(integration=integration, dag=dag_infos([access.dag_id])[access.dag_id],
                  settings=settings, missing=missing_settings(settings), last_sync=last,
                  report=_report(ledger, last), problems=shown, account_choices=choices,
                  company_choices=companies, submitted=submitted)
    page.may = {name: allowed(access.user, access.integration_id, need) is not None
                for name, need in (("change", CHANGE), ("connect", CONNECT), ("run", RUN))}
    return page
