"""Who may call the integration endpoints.

Airflow does not authenticate a plugin's FastAPI app (a mounted app inherits none of the
api-server's dependencies), so every endpoint but the OAuth callback depends on Airflow's own
`get_user`: the auth manager's JWT (`Authorization: Bearer`, or the UI's `_token` cookie) is
required; none gives 401, an invalid one 403.

An integration is then guarded as its DAG is: the auth manager decides, as it does for
Airflow's own REST API. Reading settings and the errors log needs read access to the
integration's DAG; saving settings and starting a connection need edit access to it; starting
a sync needs the right to create a run of it (with SimpleAuthManager: viewer, user, user).

`airflow.api_fastapi.core_api.security` is internal to Airflow and may change between minor
versions; Airflow is pinned, and the api tests exercise it through a real api-server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import (
    DagAccessEntity,
    DagDetails,
)
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import HTTPException, status

from hubspot_ledger.run_dag import find_dag_id

Method = Literal["GET", "PUT", "POST"]
_WHAT = {"GET": "read", "PUT": "change", "POST": "run"}


@dataclass(frozen=True)
class Access:
    """A caller allowed to act on an integration, and that integration's DAG id."""

    integration_id: int
    dag_id: str
    user: BaseUser


def integration_access(method: Method, entity: DagAccessEntity | None = None
                       ) -> Callable[[int, BaseUser], Access]:
    """A dependency: the authenticated caller may `method` the integration's DAG (`entity`).

    Its `integration_id` comes from the path, or from the query string when the path has none.
    """

    def check(integration_id: int, user: GetUserDep) -> Access:
        dag_id = find_dag_id(integration_id)  # 404 for an unknown integration
        allowed = get_auth_manager().is_authorized_dag(
            method=method, access_entity=entity, details=DagDetails(id=dag_id), user=user)
        if not allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"User {user.get_name()!r} may not {_WHAT[method]} integration "
                f"{integration_id} (Airflow DAG {dag_id})")
        return Access(integration_id=integration_id, dag_id=dag_id, user=user)

    return check


can_read = integration_access("GET")
can_change = integration_access("PUT")
can_run = integration_access("POST", DagAccessEntity.RUN)
