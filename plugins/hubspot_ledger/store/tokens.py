"""OAuth states and tokens: replay protection, serialized refreshes, key rotation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from hubspot_ledger.load.records import Integration, TokenUpdate
from hubspot_ledger.store.base import Repository
from hubspot_ledger.store.integrations import select_integration


class Tokens(Repository):
    def claim_state(self, nonce: str, integration_id: int, expires_at: dt.datetime) -> bool:
        """Record an OAuth state's use; False when it was used before (a replay)."""
        with self._session() as conn:
            row = conn.execute(
                "INSERT INTO ledger.oauth_states (nonce, integration_id, expires_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                [nonce, integration_id, expires_at],
            ).fetchone()
        return row is not None

    def update_locked(self, integration_id: int,
                      decide: Callable[[Integration], TokenUpdate | None]) -> Integration:
        """Serialize token refreshes of one integration across processes.

        Locks the integration row, hands `decide` the row as it is now (another process may have
        refreshed meanwhile), stores what `decide` returns (None: keep as is) and commits. The
        lock is held while `decide` runs, so two refreshers never both spend a refresh token.
        """
        with self._session() as conn, conn.transaction():
            current = select_integration(conn, integration_id, for_update=True)
            update = decide(current)
            if update is None:
                return current
            conn.execute(
                "UPDATE ledger.integrations SET access_token = %s, refresh_token = %s, "
                "expires_in = %s, scope = NULLIF(%s, ''), token_created_at = %s WHERE id = %s",
                [update.access_token, update.refresh_token, update.expires_in, update.scope,
                 update.token_created_at, integration_id],
            )
            return select_integration(conn, integration_id)

    def rewrap(self, rewrap: Callable[[str], str]) -> int:
        """Apply `rewrap` (re-encryption under the newest key) to every stored token, one
        integration per transaction under its row lock; returns how many were re-encrypted."""
        done = 0
        with self._session() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM ledger.integrations WHERE access_token IS NOT NULL "
                "OR refresh_token IS NOT NULL ORDER BY id").fetchall()]
            for integration_id in ids:
                with conn.transaction():  # each integration's transaction commits on its own
                    row = conn.execute(
                        "SELECT access_token, refresh_token FROM ledger.integrations "
                        "WHERE id = %s FOR UPDATE", [integration_id]).fetchone()
                    if row is None:
                        continue
                    access, refresh = (rewrap(v) if v else v for v in row)
                    conn.execute("UPDATE ledger.integrations SET access_token = %s, "
                                 "refresh_token = %s WHERE id = %s",
                                 [access, refresh, integration_id])
                    done += 1
        return done
