"""A real Airflow for the operator page's tests: the api-server (the page, the integration
endpoints, the UI and its login), and for the browser test a scheduler with LocalExecutor that
runs the queued syncs; the HubSpot sandbox as the deployment's HubSpot app, its registered
redirect URI pointing at this api-server's OAuth callback (so a browser goes through consent and
back, as with HubSpot).

Built on tests/api's helpers (environment, users, start and stop). Headless Chromium comes from
Debian's packages (`make browser` installs it; the browser test fails with that command when
/usr/bin/chromium is missing), driven by Python Playwright with `executable_path`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from api.helpers import (
    AIRFLOW,
    PREFIX,
    AirflowApi,
    api_env,
    free_port,
    stop,
    tail,
)
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import TokenCipher
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.members import MemberRole, add_member
from hubspot_ledger_tools.sandbox.testing import SandboxServer

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
UI = "/hubspot-ledger"


STARTUP_TIMEOUT = 180.0  # a shared 2-CPU machine: the first answer can take a while


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll the health endpoint until it answers (a slow first answer is not a failure)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"airflow api-server exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=10).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"airflow api-server did not answer within {STARTUP_TIMEOUT:g}s:\n{tail(log)}")


@pytest.fixture(scope="session")
def ui_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def ui_sandbox(ui_port: int) -> Iterator[SandboxServer]:
    redirect = f"http://127.0.0.1:{ui_port}{PREFIX}/oauth-callback/"
    with SandboxServer(seed=3, scale="tiny", redirect_uri=redirect) as server:
        yield server


@pytest.fixture(scope="session")
def ui_airflow(ledger_db: str, ui_sandbox: SandboxServer, ui_port: int,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    """The api-server, its environment ready for a scheduler (LocalExecutor, the execution
    API on this api-server)."""
    home = tmp_path_factory.mktemp("airflow-ui-home")
    key = Fernet.generate_key().decode()
    url = f"http://127.0.0.1:{ui_port}"
    env = {**api_env(home, ledger_db, ui_sandbox, key),
           "AIRFLOW__API__BASE_URL": url,
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__PARALLELISM": "2",
           "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
           "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    api = AirflowApi(url=url, env=env, home=home, sandbox=ui_sandbox,
                     cipher=TokenCipher([key]))
    api.airflow("db", "migrate")
    with api.log.open("wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(ui_port),
             "--workers", "1"],
            env=api.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api.pid = process.pid
    try:
        wait_until_healthy(api.url, process, api.log)
        yield api
    finally:
        stop(process)


@pytest.fixture
def scheduler(ui_airflow: AirflowApi) -> Iterator[Path]:
    """`airflow scheduler` (LocalExecutor) for this test; its log's path."""
    log = ui_airflow.home / "scheduler.log"
    with log.open("ab") as out:
        process = subprocess.Popen([AIRFLOW, "scheduler"], env=ui_airflow.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield log
    finally:
        stop(process)


@pytest.fixture
def member_books(books: Callable[..., int]) -> Callable[..., int]:
    """tests/conftest.py's `books`, with `operator` an operator and `viewer` a viewer of the
    organization (the membership service, as an operator would with the CLI)."""

    def make(*args: object, **kwargs: object) -> int:
        integration_id = books(*args, **kwargs)
        organization = LedgerHook().integrations.get(integration_id).organization_name
        add_member(organization, "operator", MemberRole.OPERATOR)
        add_member(organization, "viewer", MemberRole.VIEWER)
        return integration_id

    return make


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install -y chromium)")
    return CHROMIUM
