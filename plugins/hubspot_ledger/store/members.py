"""Organization members (issue 13: tenant authorization): the rows of
ledger.organization_members (migration 0010). The rules (role ladder, admins, what each route
needs) live in hubspot_ledger.members and hubspot_ledger.api.auth; this only reads and writes."""

from __future__ import annotations

from hubspot_ledger.store.base import Repository, scalar


class Members(Repository):
    def organization_id(self, name: str) -> int | None:
        """The organization of that exact name (surrounding blanks ignored), or None."""
        with self._session() as conn:
            found = scalar(conn.execute("SELECT id FROM ledger.organizations WHERE name = %s",
                                        [name.strip()]))
        return None if found is None else int(found)

    def set(self, organization_id: int, username: str, role: str) -> bool:
        """Make `username` a member of the organization with `role` (a member already: the
        role changes). True when the membership is new."""
        with self._session() as conn:
            new = scalar(conn.execute(
                "INSERT INTO ledger.organization_members (organization_id, username, role) "
                "VALUES (%s, %s, %s) ON CONFLICT (organization_id, username) "
                "DO UPDATE SET role = EXCLUDED.role RETURNING (xmax = 0)",
                [organization_id, username, role]))
        return bool(new)

    def remove(self, organization_id: int, username: str) -> bool:
        """End a membership; False when there was none."""
        with self._session() as conn:
            row = conn.execute(
                "DELETE FROM ledger.organization_members WHERE organization_id = %s "
                "AND username = %s RETURNING id", [organization_id, username],
            ).fetchone()
        return row is not None

    def list(self, organization_id: int | None = None) -> list[tuple[str, str, str]]:
        """(organization name, username, role) of every membership (of one organization),
        by organization name and username."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT o.name, m.username, m.role FROM ledger.organization_members m "
                "JOIN ledger.organizations o ON o.id = m.organization_id "
                "WHERE %s::bigint IS NULL OR m.organization_id = %s "
                "ORDER BY o.name, m.username", [organization_id, organization_id],
            ).fetchall()
        return [(str(org), str(user), str(role)) for org, user, role in rows]
