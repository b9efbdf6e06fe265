"""Fixtures of the CLI tests: a ledger database that does not exist yet (as on a fresh server),
and the `hubspot_default` connection of a running sandbox."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from support import api_version_extra

from hubspot_ledger_tools.sandbox.testing import SandboxServer


def server_uri() -> str:
    """The test run's PostgreSQL server (tests/conftest.py points ledger_default at it)."""
    return os.environ["AIRFLOW_CONN_LEDGER_DEFAULT"].rsplit("/", 1)[0]


@pytest.fixture
def fresh_ledger_uri() -> Iterator[str]:
    """A ledger database of this test that does not exist yet (`migrate` creates it)."""
    name = f"ledger_cli_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    yield f"{server_uri()}/{name}"
    with psycopg.connect(f"{server_uri()}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=1, scale="tiny") as server:
        yield server


def hubspot_connection(sb: SandboxServer) -> str:
    """`hubspot_default` as an operator sets it, pointing at the sandbox's OAuth app."""
    return json.dumps({
        "conn_type": "http", "host": sb.url, "login": sb.client_id,
        "password": sb.client_secret,
        "extra": {"redirect_uri": sb.redirect_uri, "authorize_url": f"{sb.url}/oauth/authorize",
                  **api_version_extra()}})
