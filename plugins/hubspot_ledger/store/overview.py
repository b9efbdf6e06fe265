"""What the ledger holds, at a glance (the demo's summary)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from hubspot_ledger.store.base import Repository, scalar


class Overview(Repository):
    def table_counts(self, tables: Sequence[str]) -> dict[str, int]:
        with self._session() as conn:
            return {t: int(scalar(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier("ledger", t))))) for t in tables}

    def contracts(self, integration_id: int, limit: int
                  ) -> list[tuple[str, str, Any, str, int]]:
        """(name, customer, total, currency, obligations) of the integration's contracts."""
        with self._session() as conn:
            rows = conn.execute(
                "SELECT c.name, cu.name, c.total_amount, c.currency, "
                "(SELECT count(*) FROM ledger.performance_obligations p "
                " WHERE p.contract_id = c.id) "
                "FROM ledger.integration_records r JOIN ledger.contracts c ON c.id = r.local_id "
                "JOIN ledger.customers cu ON cu.id = c.customer_id "
                "WHERE r.integration_id = %s AND r.remote_type = 'deal' ORDER BY c.id LIMIT %s",
                [integration_id, limit]).fetchall()
        return [(str(a), str(b), c, str(d), int(e)) for a, b, c, d, e in rows]
