"""Tenant authorization through a real api-server (issue 13, point 1): an organization's
integrations exist only for its members (ledger.organization_members) and Airflow admins.

Two tenants: `alice` (Airflow role `user`) is an operator of Org A, `bob` (also `user`) of
Org B; `admin` (Airflow role `admin`) is a member of nothing. Before tenant authorization any
Airflow `user` could read and change every organization's integration, get a consent URL for it
and queue its syncs, and the 403's text named the other tenant's DAG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus
from hubspot_ledger.members import MemberRole, add_member, remove_member
from hubspot_ledger.run_dag import find_dag_id

from .helpers import AirflowApi

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ORG_A, ORG_B = "Org A", "Org B"
UNKNOWN = 4040

# Every route of an integration: (method, path with {id}, JSON body, success status).
ROUTES = [
    ("GET", "/{id}/settings/", None, 200),
    ("PUT", "/{id}/settings/", {"sync_invoices": True}, 200),
    ("POST", "/{id}/settings/", {"sync_invoices": True}, 200),
    ("GET", "/auth/?integration_id={id}", None, 200),
    ("POST", "/{id}/trigger-sync/", {"full_refresh": False}, 202),
    ("GET", "/{id}/errors/", None, 200),
]
ROUTE_IDS = [f"{m} {p.split('/')[-2] or p}" for m, p, _, _ in ROUTES]


@dataclass(frozen=True)
class Tenants:
    a: int
    b: int


@pytest.fixture
def tenants(books: Callable[..., int]) -> Tenants:
    """Org A and Org B, each ready to sync (connected, settings complete)."""
    a, b = books(ORG_A, configured=True), books(ORG_B, configured=True)
    for integration_id in (a, b):
        LedgerHook().integrations.set_status(integration_id, IntegrationStatus.CONNECTED)
    add_member(ORG_A, "alice", MemberRole.OPERATOR)
    add_member(ORG_B, "bob", MemberRole.OPERATOR)
    return Tenants(a, b)


def dags_known(api: AirflowApi, path: str) -> None:
    """Queueing a run needs Airflow to know the DAGs: parse them (seconds) only then."""
    if "trigger-sync" in path:
        api.reserialize()


def call(api: AirflowApi, user: str, method: str, path: str, integration_id: int,
         body: dict | None) -> requests.Response:
    return api.call(method, path.format(id=integration_id), user=user, json=body)


def runs_of(api: AirflowApi, integration_id: int) -> list[str]:
    """The runs Airflow has of the integration's DAG (Airflow's REST API, as an admin)."""
    dag_id = find_dag_id(integration_id)
    response = api.call("GET", "/api/v2/dags/~/dagRuns", user="admin")
    assert response.status_code == 200, response.text
    return [r["dag_run_id"] for r in response.json()["dag_runs"] if r["dag_id"] == dag_id]


@pytest.mark.parametrize(("method", "path", "body", "ok"), ROUTES, ids=ROUTE_IDS)
def test_another_tenants_integration_looks_exactly_like_a_missing_one(
        airflow_api: AirflowApi, tenants: Tenants, method: str, path: str,
        body: dict | None, ok: int) -> None:
    dags_known(airflow_api, path)  # so that a run of B could be queued, were it allowed
    settings_before = airflow_api.call("GET", f"/{tenants.b}/settings/", user="bob").json()
    runs_before = runs_of(airflow_api, tenants.b)

    theirs = call(airflow_api, "alice", method, path, tenants.b, body)
    nobodys = call(airflow_api, "alice", method, path, UNKNOWN, body)

    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json() == {"detail": f"Integration {tenants.b} does not exist"}
    assert nobodys.json() == {"detail": f"Integration {UNKNOWN} does not exist"}
    assert theirs.headers["content-type"] == nobodys.headers["content-type"]
    # Nothing of B changed, nothing of B was queued.
    assert airflow_api.call("GET", f"/{tenants.b}/settings/", user="bob").json() == \
        settings_before
    assert runs_of(airflow_api, tenants.b) == runs_before


@pytest.mark.parametrize(("method", "path", "body", "ok"), ROUTES, ids=ROUTE_IDS)
def test_a_member_acts_on_their_own_organization(
        airflow_api: AirflowApi, tenants: Tenants, method: str, path: str,
        body: dict | None, ok: int) -> None:
    dags_known(airflow_api, path)
    for user, mine in (("alice", tenants.a), ("bob", tenants.b)):
        response = call(airflow_api, user, method, path, mine, body)
        assert response.status_code == ok, (user, response.text)


@pytest.mark.parametrize(("method", "path", "body", "ok"), ROUTES, ids=ROUTE_IDS)
def test_an_airflow_admin_acts_on_every_organization(
        airflow_api: AirflowApi, tenants: Tenants, method: str, path: str,
        body: dict | None, ok: int) -> None:
    dags_known(airflow_api, path)
    for integration_id in (tenants.a, tenants.b):
        response = call(airflow_api, "admin", method, path, integration_id, body)
        assert response.status_code == ok, response.text
    missing = call(airflow_api, "admin", method, path, UNKNOWN, body)
    assert missing.json() == {"detail": f"Integration {UNKNOWN} does not exist"}


def test_a_consent_url_is_only_for_ones_own_organization(airflow_api: AirflowApi,
                                                          tenants: Tenants) -> None:
    """The attack of the red-team pass: A's user connecting B to a portal of their choosing
    starts with a consent URL (a signed state) for B. There is none to be had."""
    refused = airflow_api.call("GET", "/auth/", user="alice",
                               params={"integration_id": tenants.b})
    assert refused.status_code == 404
    assert "url" not in refused.json()
    mine = airflow_api.call("GET", "/auth/", user="alice", params={"integration_id": tenants.a})
    assert mine.status_code == 200 and mine.json()["url"].startswith(airflow_api.sandbox.url)


def test_roles_form_a_ladder_and_a_refusal_names_nothing_else(
        airflow_api: AirflowApi, tenants: Tenants) -> None:
    add_member(ORG_A, "bob", MemberRole.VIEWER)  # bob: operator of B, viewer of A
    a = tenants.a

    assert airflow_api.call("GET", f"/{a}/settings/", user="bob").status_code == 200
    assert airflow_api.call("GET", f"/{a}/errors/", user="bob").status_code == 200
    refused = [airflow_api.call("PUT", f"/{a}/settings/", user="bob",
                                json={"sync_invoices": True}),
               airflow_api.call("GET", "/auth/", user="bob", params={"integration_id": a}),
               airflow_api.call("POST", f"/{a}/trigger-sync/", user="bob")]
    for response in refused:
        assert response.status_code == 403, response.text
        detail = response.json()["detail"]
        assert detail.startswith("User 'bob' may not ") and f"integration {a}:" in detail
        assert "role in its organization is viewer" in detail
        assert "hubspot_sync" not in detail and ORG_A not in detail

    add_member(ORG_A, "bob", MemberRole.EDITOR)
    assert airflow_api.call("PUT", f"/{a}/settings/", user="bob",
                            json={"sync_invoices": True}).status_code == 200
    assert airflow_api.call("GET", "/auth/", user="bob",
                            params={"integration_id": a}).status_code == 200
    editor_runs = airflow_api.call("POST", f"/{a}/trigger-sync/", user="bob")
    assert editor_runs.status_code == 403 and "needs operator" in editor_runs.json()["detail"]


def test_a_member_still_needs_airflows_permission_on_the_dag(
        airflow_api: AirflowApi, tenants: Tenants) -> None:
    """Membership comes on top of Airflow's own check: carol's Airflow role is viewer, so an
    operator membership lets her read, not queue runs; the 403 does not name the DAG."""
    add_member(ORG_A, "carol", MemberRole.OPERATOR)
    assert airflow_api.call("GET", f"/{tenants.a}/settings/", user="carol").status_code == 200
    response = airflow_api.call("POST", f"/{tenants.a}/trigger-sync/", user="carol")
    assert response.status_code == 403
    assert response.json() == {"detail": f"User 'carol' may not run integration {tenants.a}: "
                                         "their Airflow role does not allow it"}


def test_membership_is_data_removing_it_hides_the_organization(
        airflow_api: AirflowApi, tenants: Tenants) -> None:
    assert airflow_api.call("GET", f"/{tenants.a}/settings/", user="alice").status_code == 200
    remove_member(ORG_A, "alice")
    gone = airflow_api.call("GET", f"/{tenants.a}/settings/", user="alice")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"Integration {tenants.a} does not exist"}
    add_member(ORG_A, "alice", MemberRole.VIEWER)
    assert airflow_api.call("GET", f"/{tenants.a}/settings/", user="alice").status_code == 200


def test_a_member_of_an_organization_sees_all_its_integrations_and_no_others(
        airflow_api: AirflowApi, tenants: Tenants, books: Callable[..., int]) -> None:
    second_a = books(ORG_A)  # same organization, another integration
    assert airflow_api.call("GET", f"/{second_a}/settings/", user="alice").status_code == 200
    assert airflow_api.call("GET", f"/{second_a}/settings/", user="bob").status_code == 404


def test_the_api_description_needs_an_airflow_user(airflow_api: AirflowApi) -> None:
    assert airflow_api.call("GET", "/openapi.json", user=None).status_code == 401
    described = airflow_api.call("GET", "/openapi.json", user="alice")
    assert described.status_code == 200
    assert "/{integration_id}/settings/" in described.json()["paths"]
    for page in ("/docs", "/redoc"):
        assert airflow_api.call("GET", page, user=None).status_code == 404
