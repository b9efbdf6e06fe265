"""A real Airflow for the backfill tests: `airflow db migrate`, then an api-server (the task
execution API) and a scheduler with the LocalExecutor, in a throw-away Airflow home, against
this run's ledger and a HubSpot sandbox. The `hubspot-ledger` CLI runs as a child process with
the same environment, as an operator would run it next to the deployment.

The scheduler runs with `[scheduler] use_job_schedule = False`: it starts queued runs (the
backfill's) but creates no scheduled run of its own, so what the ledger holds afterwards is
what the backfill's windows wrote, nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests
from api.helpers import AIRFLOW, api_env, free_port, stop, tail  # tests/api
from psycopg import sql

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger_tools.sandbox.testing import SandboxServer

CLI_TIMEOUT = 2400.0  # 35 runs of 8 tasks, each its own process
STARTUP_DEADLINE = 240.0  # two shared CPUs: the api-server may take a while


@dataclass
class Stack:
    home: Path
    env: dict[str, str]

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True,
                              timeout=300)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`hubspot-ledger …` as an operator runs it next to this deployment."""
        return subprocess.run([sys.executable, "-m", "hubspot_ledger.cli", *args],
                              env=self.env, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT)

    def task_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted((self.home / "logs").rglob("*.log")))


def stack_env(home: Path, ledger_uri: str, sandbox: SandboxServer, port: int,
              metadata_uri: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = api_env(home, ledger_uri, sandbox, os.environ[KEYS_ENV])
    env.update({
        # PostgreSQL, not SQLite: the scheduler and the backfill's creation write at once.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_uri,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "HUBSPOT_LEDGER_RETRY_DELAY_SECONDS": "1",
        "HUBSPOT_LEDGER_BUSY_DELAY_SECONDS": "5",
        # Two CPUs shared with other work: the task runners wait longer for the api-server.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        **(extra or {}),
    })
    return env


@contextmanager
def metadata_database(ledger_uri: str) -> Iterator[str]:
    """A PostgreSQL database of its own for Airflow's metadata, on the ledger's server, dropped
    afterwards."""
    name = f"airflow_backfill_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server = ledger_uri.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield "postgresql+psycopg://" + server.split("://", 1)[1] + f"/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


@contextmanager
def airflow_stack(home: Path, ledger_uri: str, sandbox: SandboxServer,
                  metadata_uri: str, extra_env: Mapping[str, str] | None = None
                  ) -> Iterator[Stack]:
    """`extra_env` overrides the stack's settings (e.g. a scheduler that does schedule)."""
    port = free_port()
    stack = Stack(home=home, env=stack_env(home, ledger_uri, sandbox, port, metadata_uri,
                                           extra_env))
    migrated = stack.airflow("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    (home / ".migrated").write_text("ok\n")  # what prepare_airflow_home() looks for
    with ExitStack() as running:
        for name, command in (("api-server", ["api-server", "--host", "127.0.0.1", "--port",
                                              str(port), "--workers", "1"]),
                              ("scheduler", ["scheduler"])):
            log = (home / f"{name}.log").open("wb")
            running.callback(log.close)
            process = subprocess.Popen([AIRFLOW, *command], env=stack.env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            running.callback(stop, process)
            if name == "api-server":
                _wait_until_healthy(f"http://127.0.0.1:{port}", process, home / f"{name}.log")
        yield stack


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"airflow api-server exited:\n{tail(log)}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=10).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"airflow api-server did not answer in time:\n{tail(log)}")
