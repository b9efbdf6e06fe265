"""Tenant authorization as data: which Airflow user may act on which organization, and how far.

The tenant model (README "Security"):

- An organization's integrations are visible to its **members** only: the rows of
  `ledger.organization_members` (organization, username, role). `username` is the auth
  manager's user name (`BaseUser.get_name()`: SimpleAuthManager's user name, FAB's username).
- Roles form a ladder, each including the one below it:

  | role       | may                                                              |
  |------------|------------------------------------------------------------------|
  | `viewer`   | read settings and the errors log                                 |
  | `editor`   | also save settings and start a HubSpot connection (consent URL)  |
  | `operator` | also queue syncs                                                 |

- **Airflow admins** (the auth manager's admin role: `admin` with SimpleAuthManager, `Admin`
  with FAB; `HUBSPOT_LEDGER_ADMIN_ROLES` lists others) act on every organization without a
  row. Nobody else does: an auth manager whose users carry no recognisable role simply has no
  admins here (fail closed).
- Membership comes **on top of** Airflow's own permission on the integration's DAG: both must
  allow the action (api/auth.py).
- To a caller who is not a member, an organization's integrations do not exist: every route
  answers 404 `Integration N does not exist`, exactly as for an id nobody has.

Operators manage memberships with `hubspot-ledger member add|list|remove` (the CLI runs with
the deployment's ledger credentials, so it is an operator's tool, not a tenant's).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hubspot_ledger.errors import InvalidInput, NotFound
from hubspot_ledger.user_input import text_problem

if TYPE_CHECKING:  # imported when used: the CLI builds its parser from MemberRole
    from hubspot_ledger.hooks.ledger import LedgerHook

MAX_USERNAME = 256
MAX_ORGANIZATION = 200


class MemberRole(StrEnum):
    """A member's role in an organization, lowest first (the migration's check constraint)."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OPERATOR = "operator"

    @property
    def rank(self) -> int:
        return list(MemberRole).index(self)

    def allows(self, needed: MemberRole) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Membership:
    organization: str
    username: str
    role: MemberRole


def _ledger() -> LedgerHook:
    from hubspot_ledger.hooks.ledger import LedgerHook

    return LedgerHook()


def _checked(value: str, what: str, max_length: int) -> str:
    problem = text_problem(value, what=what, max_length=max_length)
    if problem is None and not value.strip():
        problem = f"{what} is empty"
    if problem:
        raise InvalidInput(problem[0].upper() + problem[1:])
    return value.strip()


def _organization_id(ledger: LedgerHook, organization: str) -> tuple[int, str]:
    name = _checked(organization, "the organization name", MAX_ORGANIZATION)
    organization_id = ledger.members.organization_id(name)
    if organization_id is None:
        raise NotFound(f"There is no organization named {name!r} "
                       "(`hubspot-ledger integration create` creates it)")
    return organization_id, name


def add_member(organization: str, username: str, role: MemberRole, *,
               ledger: LedgerHook | None = None) -> tuple[Membership, bool]:
    """Give `username` `role` in the organization (changing the role of a member already).
    Returns the membership and whether it is new."""
    ledger = ledger or _ledger()
    organization_id, name = _organization_id(ledger, organization)
    user = _checked(username, "the user name", MAX_USERNAME)
    created = ledger.members.set(organization_id, user, MemberRole(role).value)
    return Membership(name, user, MemberRole(role)), created


def remove_member(organization: str, username: str, *, ledger: LedgerHook | None = None
                  ) -> None:
    ledger = ledger or _ledger()
    organization_id, name = _organization_id(ledger, organization)
    user = _checked(username, "the user name", MAX_USERNAME)
    if not ledger.members.remove(organization_id, user):
        raise NotFound(f"{user!r} is not a member of organization {name!r}")


def list_members(organization: str | None = None, *, ledger: LedgerHook | None = None
                 ) -> list[Membership]:
    ledger = ledger or _ledger()
    organization_id = None if organization is None else _organization_id(ledger,
                                                                          organization)[0]
    return [Membership(org, user, MemberRole(role))
            for org, user, role in ledger.members.list(organization_id)]
