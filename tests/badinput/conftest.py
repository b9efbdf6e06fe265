"""One sync of the whole catalogue: a tiny seed portal plus every case of catalogue.py (and one
more, in a portal of its own, for the cases that would stop the others: ALONE)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from starlette.responses import JSONResponse

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger_tools.fault_matrix import new_integration, sandbox_app, sync
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .catalogue import ALONE, build


@dataclass
class Synced:
    conn: psycopg.Connection[Any]
    integration_id: int
    made: dict[str, tuple[str, str, list[str]]]
    succeeded: bool
    failures: list[str]

    def document(self, key: str) -> dict[str, Any] | None:
        kind, remote_id, _ = self.made[key]
        table = {"deal": "contracts", "invoice": "invoices"}[kind]
        cur = self.conn.execute(
            f"SELECT x.* FROM ledger.integration_records r JOIN ledger.{table} x "  # noqa: S608
            "ON x.id = r.local_id WHERE r.integration_id = %s AND r.remote_type = %s "
            "AND r.remote_id = %s", [self.integration_id, kind, remote_id])
        row = cur.fetchone()
        return None if row is None else dict(zip([d.name for d in cur.description or []], row,
                                                 strict=True))

    def lines(self, key: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT r.remote_id, x.quantity, x.unit_price, x.amount, i.sku, i.name, "
            "i.item_type FROM ledger.integration_records r JOIN "
            "ledger.performance_obligations x ON x.id = r.local_id AND r.local_table = "
            "'performance_obligations' JOIN ledger.items i ON i.id = x.item_id WHERE "
            "r.integration_id = %s AND r.remote_id = ANY(%s) ORDER BY r.remote_id",
            [self.integration_id, self.made[key][2]])
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def errors(self, key: str) -> list[str]:
        return self.errors_of(self.made[key][1])

    def errors_of(self, remote_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT message FROM ledger.integration_errors WHERE integration_id = %s AND "
            "remote_id = %s", [self.integration_id, remote_id]).fetchall()]

    def customer(self, key: str) -> dict[str, Any]:
        document = self.document(key)
        assert document is not None
        cur = self.conn.execute("SELECT * FROM ledger.customers WHERE id = %s",
                                [document["customer_id"]])
        row = cur.fetchone()
        assert row is not None
        return dict(zip([d.name for d in cur.description or []], row, strict=True))


@pytest.fixture(scope="module")
def synced(ledger_db: str) -> Iterator[Synced]:
    with pytest.MonkeyPatch.context() as mp, SandboxServer(seed=13, scale="tiny") as sb, \
            sandbox_app(sb), psycopg.connect(ledger_db, autocommit=True) as conn:
        mp.setenv(KEYS_ENV, Fernet.generate_key().decode())
        made = build(sb)
        integration_id = new_integration(sb, "Bad Input Ltd")
        org = conn.execute("SELECT organization_id FROM ledger.integrations WHERE id = %s",
                           [integration_id]).fetchone()
        assert org is not None  # a customer made by hand, under another name than HubSpot's
        conn.execute("INSERT INTO ledger.customers (organization_id, name, customer_type) "
                     "VALUES (%s, 'Globex Inc', 'company')", [org[0]])
        succeeded, failures = sync(integration_id, retries=0)
        yield Synced(conn, integration_id, made, succeeded, failures)


def _json_as_ascii(self: JSONResponse, content: Any) -> bytes:
    # HubSpot sends what is not valid Unicode as a JSON escape ("\\ud83d"); the sandbox's
    # responses are UTF-8 (starlette), which cannot carry a lone surrogate at all. Escaped, the
    # same JSON arrives as HubSpot sends it.
    return json.dumps(content, ensure_ascii=True, allow_nan=False,
                      separators=(",", ":")).encode("ascii")


@pytest.fixture(scope="module")
def synced_alone(ledger_db: str) -> Iterator[Synced]:
    """The catalogue's ALONE cases (invalid Unicode), synced in a portal of their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(JSONResponse, "render", _json_as_ascii)
        mp.setenv(KEYS_ENV, Fernet.generate_key().decode())
        with SandboxServer(seed=13, scale="tiny") as sb, sandbox_app(sb), \
                psycopg.connect(ledger_db, autocommit=True) as conn:
            made = build(sb, ALONE)
            integration_id = new_integration(sb, "Bad Unicode Ltd")
            succeeded, failures = sync(integration_id, retries=0)
            yield Synced(conn, integration_id, made, succeeded, failures)
