"""Settings and the errors log through the plugin's endpoints on a real api-server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import ACCOUNTS, COMPANY_LABEL

from .helpers import AirflowApi

CODES = {"ar_account": "1100", "deferred_revenue_account": "2400", "expense_account": "5000",
         "income_account": "4000", "clearing_account": "1190"}
EVERYTHING_MISSING = [a.label for a in ACCOUNTS] + [COMPANY_LABEL]
# Issue 14's settings, at their defaults (test_api_beyond_settings.py changes them).
BEYOND_DEFAULTS = {"invoice_parties": "unknown", "won_stages": "closedwon",
                   "recognition": "immediate"}

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_settings_round_trip(airflow_api: AirflowApi, books: Callable[..., int],
                             method: str) -> None:
    integration_id = books()
    fresh = airflow_api.call("GET", f"/{integration_id}/settings/").json()
    assert fresh["missing"] == EVERYTHING_MISSING and fresh["sync_invoices"] is False

    body = {**CODES, "company": "Acme Ltd", "sync_invoices": True}
    saved = airflow_api.call(method, f"/{integration_id}/settings/", json=body)

    assert saved.status_code == 200, saved.text
    expected = {"integration_id": integration_id, **body, "schedule": "@hourly",
                **BEYOND_DEFAULTS, "missing": []}
    assert saved.json() == expected
    assert airflow_api.call("GET", f"/{integration_id}/settings/").json() == expected


def test_a_partial_save_keeps_the_other_settings(airflow_api: AirflowApi,
                                                 books: Callable[..., int]) -> None:
    integration_id = books(configured=True)
    saved = airflow_api.call("PUT", f"/{integration_id}/settings/",
                             json={"sync_invoices": True, "income_account": None})
    assert saved.status_code == 200
    assert saved.json()["sync_invoices"] is True
    assert saved.json()["income_account"] == "4000" and saved.json()["company"] == "Acme Ltd"


def test_an_unknown_account_code_is_422_and_nothing_is_saved(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = books()
    response = airflow_api.call("PUT", f"/{integration_id}/settings/",
                                json={**CODES, "income_account": "9999", "sync_invoices": True})
    assert response.status_code == 422
    assert response.json() == {"detail": "Settings not saved: no account with code '9999' in "
                                         "organization 'Acme Corp' (for the income account)"}
    after = airflow_api.call("GET", f"/{integration_id}/settings/").json()
    assert after["ar_account"] is None and after["sync_invoices"] is False


@pytest.mark.parametrize(("body", "detail"), [
    ({"ar_acount": "1100"}, "Invalid request: ar_acount: Extra inputs are not permitted"),
    ({"sync_invoices": "maybe"},
     "Invalid request: sync_invoices: Input should be a valid boolean, unable to interpret "
     "input"),
])
def test_a_malformed_body_is_422(airflow_api: AirflowApi, books: Callable[..., int],
                                 body: dict, detail: str) -> None:
    response = airflow_api.call("PUT", f"/{books()}/settings/", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(("method", "path"), [("GET", "/4040/settings/"),
                                              ("PUT", "/4040/settings/"),
                                              ("GET", "/4040/errors/")])
def test_an_unknown_integration_is_404(airflow_api: AirflowApi, books: Callable[..., int],
                                       method: str, path: str) -> None:
    books()
    response = airflow_api.call(method, path, json={} if method == "PUT" else None)
    assert response.status_code == 404
    assert response.json() == {"detail": "Integration 4040 does not exist"}


def test_the_errors_log_newest_first_and_limited(airflow_api: AirflowApi,
                                                 books: Callable[..., int]) -> None:
    integration_id = books()
    assert airflow_api.call("GET", f"/{integration_id}/errors/").json() == {
        "integration_id": integration_id, "errors": []}
    hook = LedgerHook()
    hook.errors.log(integration_id, None, "sync_products", [("product", "7", "First problem")])
    hook.errors.log(integration_id, None, "sync_deals",
                    [("deal", "42", "No valid line items")])

    everything = airflow_api.call("GET", f"/{integration_id}/errors/").json()["errors"]
    latest = airflow_api.call("GET", f"/{integration_id}/errors/", params={"limit": 1})

    assert [e["message"] for e in everything] == ["No valid line items", "First problem"]
    assert everything[0]["remote_type"] == "deal" and everything[0]["remote_id"] == "42"
    assert everything[0]["created_at"]
    # Logged without a cause of its own: taken to lie in the ledger, so retried every run.
    assert everything[0]["cause"] == "ledger" and everything[0]["open"] is True
    assert [e["message"] for e in latest.json()["errors"]] == ["No valid line items"]
    too_many = airflow_api.call("GET", f"/{integration_id}/errors/", params={"limit": 0})
    assert too_many.status_code == 422
