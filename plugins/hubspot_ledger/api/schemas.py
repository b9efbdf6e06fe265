"""Request and response bodies of the integration endpoints.

Responses carry what a front end shows; never a token, a code, a state or the client secret.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from hubspot_ledger.load.records import IntegrationError, IntegrationSettings


class ConsentUrl(BaseModel):
    url: str = Field(description="HubSpot's consent page, with a signed state for the "
                                 "integration; send the customer's browser there")


class Connected(BaseModel):
    status: str = Field(description="`connected`")
    integration_id: int
    portal_id: str | None = Field(description="the HubSpot portal (hub) id")
    currency: str | None = Field(description="the portal's company currency")


class TriggerSync(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_refresh: bool = Field(False, description="re-read everything since the cutoff date")


class QueuedRun(BaseModel):
    dag_id: str
    dag_run_id: str
    state: str = Field(description="`queued`: the scheduler starts it")


class _SettingFields(BaseModel):
    """The settings a person chooses, as the API names them: accounts by their code and the
    company by its name, in the integration's organization; null when unset (or pointing at a
    deleted record). The account fields are those of `integration_settings.ACCOUNTS` (a test
    keeps them in step)."""

    ar_account: str | None = None
    deferred_revenue_account: str | None = None
    expense_account: str | None = None
    income_account: str | None = None
    clearing_account: str | None = None
    company: str | None = None


class SettingsUpdate(_SettingFields):
    """Partial: a field left out (or null) keeps its saved value."""

    model_config = ConfigDict(extra="forbid")

    sync_invoices: bool | None = None
    schedule: str | None = Field(
        None, description="the DAG's cron schedule in UTC ('0 * * * *', or @hourly, @daily…); "
                          "checked before anything is saved (422 if Airflow cannot run on it)")
    # Issue 14: `unknown|hubspot`, `closedwon|all-pipelines|STAGE_ID,...`,
    # `immediate|hubspot-terms` (validated by `integration_settings.save_settings`).
    invoice_parties: str | None = Field(None, max_length=40)
    won_stages: str | None = Field(None, max_length=2000)
    recognition: str | None = Field(None, max_length=40)


class Settings(_SettingFields):
    integration_id: int
    sync_invoices: bool
    schedule: str | None = Field(None, description="the DAG's cron schedule (UTC); the DAG "
                                                   "follows a change at its next parse")
    invoice_parties: str = "unknown"
    won_stages: str = "closedwon"
    recognition: str = "immediate"
    missing: list[str] = Field(description="required settings not set yet (or pointing at a "
                                           "deleted record); empty when setup is complete")

    @classmethod
    def of(cls, settings: IntegrationSettings, missing: list[str],
           schedule: str | None = None) -> Settings:
        return cls(**settings.to_dict(), schedule=schedule, missing=missing)


class ErrorEntry(BaseModel):
    id: int
    sync_run_id: int | None
    remote_type: str | None
    remote_id: str | None
    message: str
    created_at: dt.datetime
    last_seen_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = Field(
        default=None, description="null while the record still fails (an open problem)")
    severity: str = "error"
    open: bool = True
    cause: str | None = Field(
        default=None, description="an open problem's cause: `hubspot` (retried when the record "
        "changes in HubSpot) or `ledger` (retried every run); null for warnings")


class ErrorsLog(BaseModel):
    integration_id: int
    errors: list[ErrorEntry] = Field(description="newest first")

    @classmethod
    def of(cls, integration_id: int, errors: list[IntegrationError]) -> ErrorsLog:
        return cls(integration_id=integration_id,
                   errors=[ErrorEntry(**e.to_dict()) for e in errors])
