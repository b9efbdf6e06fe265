"""The benchmark's world: its own ledger database, the sandbox, one connected integration.

The ledger is a database of its own (`ledger_bench` by default, on the server of
`ledger_default`), created and migrated at the start and dropped at the end, so the demo's and the
tests' ledgers are never touched. The integration is set up exactly as `make demo` does it
(books, settings with invoice sync on, the real OAuth consent and code exchange).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from hubspot_ledger.config import DEFAULT_LEDGER_URI
from hubspot_ledger_tools.sandbox.testing import SandboxServer

LEDGER_ENV = "AIRFLOW_CONN_LEDGER_DEFAULT"
ORGANIZATION = "Bench Company"
# Enough for every request of the largest phase (a full `large` sync is a few thousand).
REQUEST_LOG_SIZE = 2_000_000


def database_uri(name: str, base: str | None = None) -> str:
    """`base` (the ledger_default URI) with its database replaced by `name`."""
    base = base or os.environ.get(LEDGER_ENV) or DEFAULT_LEDGER_URI
    if not base.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"{LEDGER_ENV} must be a postgresql:// URI for the benchmark")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop(uri: str) -> None:
    name = urlsplit(uri).path.lstrip("/")
    with psycopg.connect(database_uri("postgres", uri), autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@contextmanager
def bench_ledger(name: str, keep: bool = False) -> Iterator[str]:
    """A fresh, migrated ledger database that `ledger_default` points at while it lives."""
    from hubspot_ledger.hooks.ledger import LedgerHook

    uri = database_uri(name)
    os.environ[LEDGER_ENV] = uri
    _drop(uri)
    LedgerHook().migrate(create_database=True)
    try:
        yield uri
    finally:
        if not keep:
            _drop(uri)


def start_sandbox(seed: int, scale: str, latency: bool = True) -> SandboxServer:
    """The sandbox in a thread of this process, with HubSpot's own rate limits (its defaults),
    HubSpot-like response times (its latency model, seeded by `seed`) unless `latency` is off,
    and the demo's OAuth app. The sync runs in child processes, so it is measured alone; and
    the census reads the portal's data in place."""
    from hubspot_ledger_tools.demo import DEMO_APP

    return SandboxServer(seed=seed, scale=scale, mode="thread", startup_timeout=600,
                         client_id=DEMO_APP["client_id"],
                         client_secret=DEMO_APP["client_secret"],
                         redirect_uri=DEMO_APP["redirect_uri"],
                         request_log_size=REQUEST_LOG_SIZE, latency=latency).start()


def connected_integration(sb: SandboxServer, cutoff: dt.date) -> int:
    """An organization with its books, invoice sync on, connected to the sandbox through the
    authorization-code flow: `make demo`'s own steps."""
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger_tools import demo

    demo.use_sandbox_app(sb.url)
    integration_id = LedgerHook().integrations.create(ORGANIZATION, cutoff)
    demo.set_up_books(integration_id)
    demo.connect_through_oauth(integration_id)
    return integration_id
