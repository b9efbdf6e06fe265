"""Issue 14's settings through the plugin's settings endpoint on a real api-server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .helpers import AirflowApi

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_issue_14_settings_are_saved_and_shown(airflow_api: AirflowApi,
                                              books: Callable[..., int]) -> None:
    integration_id = books(configured=True)
    body = {"invoice_parties": "HubSpot", "won_stages": "closedwon, 71900002",
            "recognition": "hubspot-terms"}
    saved = airflow_api.call("PUT", f"/{integration_id}/settings/", json=body)
    assert saved.status_code == 200, saved.text
    shown = airflow_api.call("GET", f"/{integration_id}/settings/").json()
    assert (shown["invoice_parties"], shown["won_stages"], shown["recognition"]) == (
        "hubspot", "closedwon,71900002", "hubspot-terms")
    assert shown["company"] == "Acme Ltd" and shown["missing"] == []


@pytest.mark.parametrize(("body", "detail"), [
    ({"invoice_parties": "contacts"},
     "Settings not saved: invoice parties must be unknown or hubspot, not 'contacts'"),
    ({"recognition": "monthly"},
     "Settings not saved: recognition must be immediate or hubspot-terms, not 'monthly'"),
    ({"won_stages": "closed won"},
     "Settings not saved: won stages must be closedwon, all-pipelines or HubSpot stage ids "
     "separated by commas (at most 50); 'closed won' is not a stage id"),
])
def test_a_bad_value_is_422_and_nothing_is_saved(airflow_api: AirflowApi,
                                                 books: Callable[..., int], body: dict,
                                                 detail: str) -> None:
    integration_id = books(configured=True)
    response = airflow_api.call("PUT", f"/{integration_id}/settings/",
                                json={**body, "sync_invoices": True})
    assert response.status_code == 422
    assert response.json() == {"detail": detail}
    after = airflow_api.call("GET", f"/{integration_id}/settings/").json()
    assert (after["invoice_parties"], after["won_stages"], after["recognition"],
            after["sync_invoices"]) == ("unknown", "closedwon", "immediate", False)
