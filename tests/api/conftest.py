"""A real `airflow api-server` with the project's plugin, for the endpoint tests.

One api-server per test session (it takes a few seconds to start), in its own throw-away
Airflow home: its own SQLite metadata DB (so queued runs never reach the shared test home),
SimpleAuthManager with two real users, this run's ledger database and the HubSpot sandbox as
the deployment's HubSpot app. Tests talk to it over HTTP only, with a JWT from `POST /auth/token`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import TokenCipher
from hubspot_ledger.sandbox.testing import SandboxServer

from .helpers import AIRFLOW, AirflowApi, api_env, free_port, stop, wait_until_healthy


@pytest.fixture(scope="session")
def api_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=1, scale="tiny") as server:
        yield server


@pytest.fixture(scope="session")
def airflow_api(ledger_db: str, api_sandbox: SandboxServer,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    home = tmp_path_factory.mktemp("airflow-api-home")
    fernet_key = Fernet.generate_key().decode()
    port = free_port()
    api = AirflowApi(url=f"http://127.0.0.1:{port}",
                     env=api_env(home, ledger_db, api_sandbox, fernet_key), home=home,
                     sandbox=api_sandbox, cipher=TokenCipher([fernet_key]))
    api.airflow("db", "migrate")
    log = home / "api-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            env=api.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_healthy(api.url, process, log)
        yield api
    finally:
        stop(process)
