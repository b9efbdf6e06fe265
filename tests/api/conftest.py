"""A real `airflow api-server` with the project's plugin, for the endpoint tests.

One api-server per test session (it takes a few seconds to start), in its own throw-away
Airflow home: its own SQLite metadata DB (so queued runs never reach the shared test home),
SimpleAuthManager with real users (helpers.USERS), this run's ledger database and the HubSpot
sandbox (`sandbox_server` of tests/conftest.py) as the deployment's HubSpot app, and two token
keys (a key rotation in progress: the new key first, the previous one still listed). Tests talk
to it over HTTP only, with a JWT from `POST /auth/token`.

Tenants: the api tests' `books` makes `operator` an operator and `viewer` a viewer of the
organization it makes (through the real membership service), so the tests written before
tenant authorization act as members; the tenant tests use other users.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable, Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import TokenCipher
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.members import MemberRole, add_member
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import AIRFLOW, AirflowApi, api_env, free_port, stop, wait_until_healthy


@pytest.fixture(scope="session")
def airflow_api(ledger_db: str, sandbox_server: SandboxServer,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    home = tmp_path_factory.mktemp("airflow-api-home")
    fernet_key, previous_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    port = free_port()
    api = AirflowApi(url=f"http://127.0.0.1:{port}",
                     env=api_env(home, ledger_db, sandbox_server,
                                 f"{fernet_key},{previous_key}"),
                     home=home, sandbox=sandbox_server,
                     cipher=TokenCipher([fernet_key, previous_key]), previous_key=previous_key)
    api.airflow("db", "migrate")
    log = home / "api-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            env=api.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api.pid = process.pid
    try:
        wait_until_healthy(api.url, process, log)
        yield api
    finally:
        stop(process)


_test_number = itertools.count(1)


@pytest.fixture(autouse=True)
def integration_ids_of_its_own(ledger: psycopg.Connection) -> None:
    """Each test's integrations get ids no earlier test had. DAG ids are integration ids
    (`hubspot_sync__integration_<id>`) and this session's api-server keeps every DAG and run it
    saw, while each test empties the ledger (ids restart): a real ledger never reuses an id."""
    first = next(_test_number) * 100_000 + 1  # far from the ids tests use for "no such" (4040)
    ledger.execute(f"ALTER TABLE ledger.integrations ALTER COLUMN id RESTART WITH {first}")


# Who `books` makes a member of the organization it makes, and as what.
BOOKS_MEMBERS = {"operator": MemberRole.OPERATOR, "viewer": MemberRole.VIEWER}


@pytest.fixture
def books(books: Callable[..., int]) -> Callable[..., int]:
    """tests/conftest.py's `books`, with BOOKS_MEMBERS members of the organization."""

    def make(*args: object, **kwargs: object) -> int:
        integration_id = books(*args, **kwargs)
        organization = LedgerHook().integrations.get(integration_id).organization_name
        for user, role in BOOKS_MEMBERS.items():
            add_member(organization, user, role)
        return integration_id

    return make
