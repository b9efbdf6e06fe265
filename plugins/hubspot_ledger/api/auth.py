"""Who may call the integration endpoints, and on which integrations.

Authentication. Airflow does not authenticate a plugin's FastAPI app (a mounted app inherits
none of the api-server's dependencies), so every endpoint but the OAuth callback depends on the
auth manager's JWT: none gives 401, an invalid one 403, as in Airflow's own REST API.
Reading routes take the token from `Authorization: Bearer` or the UI's `_token` cookie;
routes that change something (saving settings, queueing a sync) take it from the header only:
a browser attaches the cookie to a request another site makes it send, never the header, so a
cookie-only request there is refused with 403 (cross-site request forgery).

Tenant authorization (see `hubspot_ledger.members` for the model). A caller acts on an
integration only if
1. they are an Airflow admin (`is_admin`), or a member of the integration's organization
   (`ledger.organization_members`) whose role allows the action (viewer: read; editor: also
   change settings and start a connection; operator: also queue syncs), and
2. the auth manager allows the same action on the integration's DAG, as it does for Airflow's
   own REST API (read; edit; create a run).
A caller who is neither an admin nor a member gets 404 with exactly the body of an integration
that does not exist, so ids cannot be probed. A member refused by their role or by Airflow gets
403 naming only the user, the integration id and the action.

`airflow.api_fastapi.core_api.security` is internal to Airflow and may change between minor
versions; Airflow is pinned, and the api tests exercise it through a real api-server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import (
    DagAccessEntity,
    DagDetails,
)
from airflow.api_fastapi.core_api.security import (
    GetUserDep,
    bearer_scheme,
    resolve_user_from_token,
)
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from hubspot_ledger.errors import NotFound
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.members import MemberRole

ADMIN_ROLES_ENV = "HUBSPOT_LEDGER_ADMIN_ROLES"
DEFAULT_ADMIN_ROLES = "admin"  # SimpleAuthManager's "admin", FAB's "Admin"
_MAX_ID = 2**63 - 1  # ids are bigint; anything else cannot exist

COOKIE_ONLY = ("This request changes the integration, so it must carry the Airflow token in "
               "the Authorization header (Bearer); the session cookie alone is not accepted")


@dataclass(frozen=True)
class Need:
    """What an action needs: Airflow's permission on the DAG, and a member's role."""

    verb: str  # as the 403 says it: "may not <verb> integration N"
    method: Literal["GET", "PUT", "POST"]
    entity: DagAccessEntity | None
    role: MemberRole
    bearer_only: bool  # the action changes something: no cookie-only requests


READ = Need("read", "GET", None, MemberRole.VIEWER, bearer_only=False)
# The consent URL changes nothing by itself (the callback does, with the state it carries).
CONNECT = Need("connect", "PUT", None, MemberRole.EDITOR, bearer_only=False)
CHANGE = Need("change", "PUT", None, MemberRole.EDITOR, bearer_only=True)
RUN = Need("run", "POST", DagAccessEntity.RUN, MemberRole.OPERATOR, bearer_only=True)


@dataclass(frozen=True)
class Access:
    """A caller allowed to act on an integration, and that integration's DAG id."""

    integration_id: int
    dag_id: str
    user: BaseUser


def admin_roles() -> frozenset[str]:
    raw = os.environ.get(ADMIN_ROLES_ENV) or DEFAULT_ADMIN_ROLES
    return frozenset(r.strip().lower() for r in raw.split(",") if r.strip())


def role_names(user: BaseUser) -> set[str]:
    """The auth manager's role names of `user`: SimpleAuthManager's one `role`, FAB's
    `roles` (objects with a `name`). Other shapes have none."""
    names: set[str] = set()
    role = getattr(user, "role", None)
    if isinstance(role, str):
        names.add(role)
    roles = getattr(user, "roles", None)
    if isinstance(roles, list | tuple | set | frozenset):
        for item in roles:
            name = item if isinstance(item, str) else getattr(item, "name", None)
            if isinstance(name, str):
                names.add(name)
    return names


def is_admin(user: BaseUser) -> bool:
    """An Airflow admin: acts on every organization without being a member."""
    return bool({n.lower() for n in role_names(user)} & admin_roles())


async def bearer_user(request: Request,
                      credentials: Annotated[HTTPAuthorizationCredentials | None,
                                             Depends(bearer_scheme)]) -> BaseUser:
    """The caller of a route that changes something: from the Authorization header only."""
    if credentials and credentials.scheme.lower() == "bearer":
        return await resolve_user_from_token(credentials.credentials)
    if request.cookies.get(COOKIE_NAME_JWT_TOKEN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, COOKIE_ONLY)
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")


BearerUserDep = Annotated[BaseUser, Depends(bearer_user)]


def authorize(integration_id: int, user: BaseUser, need: Need) -> Access:
    """The tenant check and Airflow's DAG check (module docstring); raises 404 or 403."""
    from hubspot_ledger.dag_factory import dag_id_for

    username = user.get_name()
    missing = NotFound(f"Integration {integration_id} does not exist")
    found = (LedgerHook().integrations.for_user(integration_id, username)
             if 0 < integration_id <= _MAX_ID else None)
    if found is None:
        raise missing
    summary, role = found
    if not is_admin(user):
        if role is None:
            raise missing  # another tenant's integration looks exactly like none
        if not MemberRole(role).allows(need.role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"User {username!r} may not {need.verb} integration {integration_id}: their "
                f"role in its organization is {role}, and this needs {need.role.value}")
    dag_id = dag_id_for(summary)
    allowed = get_auth_manager().is_authorized_dag(
        method=need.method, access_entity=need.entity, details=DagDetails(id=dag_id),
        user=user)
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"User {username!r} may not {need.verb} integration {integration_id}: their "
            "Airflow role does not allow it")
    return Access(integration_id=integration_id, dag_id=dag_id, user=user)


def integration_access(need: Need) -> Callable[..., Access]:
    """A dependency: the caller may act on the integration as `need` says.

    Its `integration_id` comes from the path, or from the query string when the path has none.
    Plain `def`, so FastAPI runs its ledger read in the thread pool.
    """
    if need.bearer_only:
        def check_bearer(integration_id: int, user: BearerUserDep) -> Access:
            return authorize(integration_id, user, need)

        return check_bearer

    def check(integration_id: int, user: GetUserDep) -> Access:
        return authorize(integration_id, user, need)

    return check


can_read = integration_access(READ)
can_connect = integration_access(CONNECT)
can_change = integration_access(CHANGE)
can_run = integration_access(RUN)


async def any_user(user: GetUserDep) -> BaseUser:
    """Any authenticated Airflow user (the API's description needs no more)."""
    return user
