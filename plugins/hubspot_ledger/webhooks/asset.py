"""The Airflow asset of an integration's HubSpot changes: its DAG is scheduled on it beside its
cron (dag_factory), and the webhook endpoint records an event of it when HubSpot says the
integration's portal changed (api/asset_events). Depends on the integration id only, like the
DAG id, so it never changes with the organization's name or the integration's settings."""

from __future__ import annotations

ASSET_GROUP = "hubspot"


def asset_name(integration_id: int) -> str:
    return f"hubspot_changes__integration_{integration_id}"


def asset_uri(integration_id: int) -> str:
    return f"hubspot://integration/{integration_id}/changes"
