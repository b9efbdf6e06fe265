"""Fixtures of the ledger tests: scratch databases and a small populated ledger.

Everything stays on the server of the run's own test database (tests/conftest.py); scratch
databases are named after it so they are recognisably this run's, and dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from hubspot_ledger.hooks.ledger import LedgerHook

from .helpers import Org, admin, drop_database, make_org


@pytest.fixture
def new_db_name() -> Iterator[str]:
    """A database name of this run that does not exist yet; dropped at the end if created."""
    name = f"{LedgerHook().connection.schema}_{uuid.uuid4().hex[:6]}"
    yield name
    drop_database(name)


@pytest.fixture
def scratch_db(new_db_name: str) -> str:
    """An empty database (no ledger schema) of this run."""
    with admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(new_db_name)))
    return new_db_name


@pytest.fixture
def org_factory(ledger: psycopg.Connection[Any]) -> Callable[[str], Org]:
    """Builds organizations (with a company, account, customer, item, integration) in `ledger`."""
    return lambda name: make_org(ledger, name)
