"""Who may call the plugin's endpoints, through a real api-server: an Airflow user (the auth
manager's JWT) for everything but the OAuth callback, and the DAG permissions of that user."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import jwt
import pytest

from .helpers import AirflowApi

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# Every endpoint that needs an Airflow user: (method, path with {id}, JSON body).
AUTHENTICATED = [
    ("GET", "/auth/?integration_id={id}", None),
    ("POST", "/{id}/trigger-sync/", {"full_refresh": False}),
    ("GET", "/{id}/settings/", None),
    ("PUT", "/{id}/settings/", {"sync_invoices": True}),
    ("POST", "/{id}/settings/", {"sync_invoices": True}),
    ("GET", "/{id}/errors/", None),
]


def _forged_token() -> str:
    """A well-formed JWT claiming to be an admin, signed with a key the server does not have."""
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "operator", "role": "admin", "iat": now, "nbf": now,
              "exp": now + dt.timedelta(hours=1), "aud": "apache-airflow", "jti": "x"}
    return jwt.encode(claims, "not-the-servers-secret-" * 4, algorithm="HS512")


@pytest.mark.parametrize(("method", "path", "body"), AUTHENTICATED)
def test_anonymous_callers_are_refused(airflow_api: AirflowApi, books: Callable[..., int],
                                       method: str, path: str, body: dict | None) -> None:
    integration_id = books(configured=True)
    response = airflow_api.call(method, path.format(id=integration_id), user=None, json=body)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("token", ["not-a-jwt", _forged_token()], ids=["garbage", "forged"])
@pytest.mark.parametrize(("method", "path", "body"), AUTHENTICATED)
def test_invalid_tokens_are_refused(airflow_api: AirflowApi, books: Callable[..., int],
                                    method: str, path: str, body: dict | None,
                                    token: str) -> None:
    integration_id = books(configured=True)
    response = airflow_api.call(method, path.format(id=integration_id), token=token, json=body)
    assert response.status_code in (401, 403)
    assert response.json() == {"detail": "Invalid JWT token"}
    assert airflow_api.call("GET", f"/{integration_id}/settings/").json()["sync_invoices"] \
        is False  # nothing was saved


def test_an_airflow_user_is_let_in(airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = books()
    response = airflow_api.call("GET", f"/{integration_id}/settings/", user="operator")
    assert response.status_code == 200
    assert response.json()["integration_id"] == integration_id


def test_a_viewer_may_read_but_not_change_connect_or_sync(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = books(configured=True)
    ok = {("GET", f"/{integration_id}/settings/"), ("GET", f"/{integration_id}/errors/")}
    for method, path in ok:
        assert airflow_api.call(method, path, user="viewer").status_code == 200, path
    refused = [("PUT", f"/{integration_id}/settings/", {"sync_invoices": True}),
               ("GET", f"/auth/?integration_id={integration_id}", None),
               ("POST", f"/{integration_id}/trigger-sync/", None)]
    for method, path, body in refused:
        response = airflow_api.call(method, path, user="viewer", json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["detail"].startswith("User 'viewer' may not ")
    assert airflow_api.call("GET", f"/{integration_id}/settings/").json()["sync_invoices"] \
        is False


def test_the_plugin_is_registered_with_airflow(airflow_api: AirflowApi) -> None:
    plugins = airflow_api.call("GET", "/api/v2/plugins").json()["plugins"]
    ours = [p for p in plugins if p["name"] == "hubspot_ledger"]
    assert ours and ours[0]["fastapi_apps"][0]["url_prefix"] == "/api/integrations/hubspot"
