"""trigger-sync on a real api-server: it queues a run of the integration's own DAG through
Airflow (seen through Airflow's public REST API) and answers at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus
from hubspot_ledger.run_dag import find_dag_id

from .helpers import AirflowApi

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def ready(books: Callable[..., int], organization: str) -> int:
    """An integration whose setup is complete and which is connected."""
    integration_id = books(organization, configured=True)
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.CONNECTED)
    return integration_id


def test_trigger_sync_queues_a_run_of_the_integrations_dag(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    books("Bystander Org", configured=True)  # another integration, another DAG
    integration_id = ready(books, "Trigger Org")
    airflow_api.reserialize()
    dag_id = find_dag_id(integration_id)

    response = airflow_api.call("POST", f"/{integration_id}/trigger-sync/",
                                json={"full_refresh": True})

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["dag_id"] == dag_id == f"hubspot_sync__integration_{integration_id}"
    assert body["state"] == "queued"
    run = airflow_api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{body['dag_run_id']}")
    assert run.status_code == 200, run.text
    assert run.json()["state"] == "queued"
    assert run.json()["run_type"] == "manual"
    assert run.json()["conf"] == {"full_refresh": True}
    assert run.json()["triggering_user_name"] == "operator"
    every_run = airflow_api.call("GET", "/api/v2/dags/~/dagRuns").json()["dag_runs"]
    assert [r["dag_id"] for r in every_run if r["dag_run_id"] == body["dag_run_id"]] == [dag_id]

    # Without a body, a run is incremental; it queues even while the first one waits.
    again = airflow_api.call("POST", f"/{integration_id}/trigger-sync/")
    assert again.status_code == 202, again.text
    second = airflow_api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/"
                                     f"{again.json()['dag_run_id']}").json()
    assert second["state"] == "queued" and second["conf"] == {"full_refresh": False}


def test_an_incomplete_setup_is_409_before_anything_is_queued(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = books("Unready Org")  # books but no settings, never connected
    response = airflow_api.call("POST", f"/{integration_id}/trigger-sync/")
    assert response.status_code == 409
    assert response.json()["detail"].startswith(
        "Setup incomplete: HubSpot is not connected yet; accounts-receivable account")


def test_an_integration_in_error_must_reconnect_first(airflow_api: AirflowApi,
                                                      books: Callable[..., int]) -> None:
    integration_id = books("Revoked Org", configured=True)
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.ERROR,
                                        "HubSpot access was revoked: reconnect HubSpot")
    response = airflow_api.call("POST", f"/{integration_id}/trigger-sync/")
    assert response.status_code == 409
    assert "connect HubSpot" in response.json()["detail"]


def test_an_unknown_integration_is_404(airflow_api: AirflowApi,
                                       books: Callable[..., int]) -> None:
    books()
    response = airflow_api.call("POST", "/4040/trigger-sync/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Integration 4040 does not exist"}


def test_a_dag_airflow_has_not_parsed_yet_is_404(airflow_api: AirflowApi,
                                                 books: Callable[..., int]) -> None:
    integration_id = ready(books, "Brand New Org")  # no reserialize: Airflow lacks its DAG
    response = airflow_api.call("POST", f"/{integration_id}/trigger-sync/")
    assert response.status_code == 404
    assert response.json()["detail"].startswith(
        f"Airflow does not know DAG hubspot_sync__integration_{integration_id} yet")


def test_a_malformed_body_is_422(airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = ready(books, "Trigger Org")
    response = airflow_api.call("POST", f"/{integration_id}/trigger-sync/",
                                json={"full_refresh": "please"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Invalid request: full_refresh: ")
