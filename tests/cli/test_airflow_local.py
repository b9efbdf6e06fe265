"""`make airflow` (issue 15.1): a real local Airflow 3 of this checkout, stopped by Ctrl-C.

The launcher runs as `make airflow` runs it (`python -m hubspot_ledger_tools.airflow_local`),
with an Airflow home of the test's own (not the developer's `.airflow/`) and the test run's
ledger; no HubSpot is configured, so it starts the sandbox too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests

from hubspot_ledger.config import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.deployment, pytest.mark.timeout(1200)]
STARTUP_DEADLINE = 900.0  # four Airflow components on a shared 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Output:
    """The launcher's stdout, read as it comes (a thread), so the test can wait on lines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, text: str, deadline: float) -> str | None:
        with self.changed:
            while time.monotonic() < deadline:
                found = [line for line in self.lines if text in line]
                if found:
                    return found[0]
                self.changed.wait(timeout=max(0.0, deadline - time.monotonic()))
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _dag_ids(base_url: str, password: str) -> set[str]:
    token = requests.post(f"{base_url}/auth/token", json={"username": "admin",
                                                          "password": password},
                          timeout=30).json()["access_token"]
    answer = requests.get(f"{base_url}/api/v2/dags", timeout=30,
                          headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()
    return {dag["dag_id"] for dag in answer.json()["dags"]}


def test_make_airflow_serves_the_projects_dags_and_ctrl_c_stops_every_process(
    books: Callable[..., int], tmp_path: Path
) -> None:
    integration_id = books("Acme Corp")
    dag_id = f"hubspot_sync__integration_{integration_id}"
    port = _free_port()
    base_url = f"http://localhost:{port}"
    home = tmp_path / "airflow-home"
    env = {**os.environ, "AIRFLOW_HOME": str(home),
           "HUBSPOT_LEDGER_STATE_DIR": str(tmp_path / "state")}
    env.pop("AIRFLOW_CONN_HUBSPOT_DEFAULT", None)  # no real HubSpot: the sandbox starts
    launcher = subprocess.Popen(
        [sys.executable, "-m", "hubspot_ledger_tools.airflow_local", "--port", str(port),
         "--sandbox-port", "0"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(launcher)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        up = output.wait_for("Airflow is up", deadline)
        assert up == f"==> Airflow is up: {base_url}", "\n".join(output.lines)
        login = output.wait_for("login:", deadline)
        passwords = home / "simple_auth_manager_passwords.json.generated"
        assert login == (f"    login: admin (Airflow's SimpleAuthManager); the password is in "
                         f"{passwords}")
        assert output.wait_for("HubSpot: the sandbox at", deadline)
        assert requests.get(f"{base_url}/api/v2/monitor/health", timeout=30).status_code == 200

        # The project's DAG, listed by the api-server once the DAG processor parsed it (the
        # login is the one printed: user admin, the password from the file named).
        password = json.loads(passwords.read_text())["admin"]
        dags: set[str] = set()
        while dag_id not in dags and time.monotonic() < deadline:
            dags = _dag_ids(base_url, password)
            if dag_id not in dags:
                time.sleep(2)  # polling the API for observable state, with a deadline
        assert dag_id in dags, (dags, "\n".join(output.lines))
        assert not any(d.startswith("example_") for d in dags)  # examples off

        started = {p.pid for p in psutil.Process(launcher.pid).children(recursive=True)}
        names = {psutil.Process(p).name() for p in started if _alive(p)}
        assert len(started) >= 5, names  # sandbox, api-server, scheduler, processor, triggerer

        launcher.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends it
        assert launcher.wait(timeout=180) == 0, "\n".join(output.lines)
        output.thread.join(timeout=30)
        assert output.lines[-1] == "    every process it started has stopped"
        gone_by = time.monotonic() + 30
        while any(_alive(p) for p in started) and time.monotonic() < gone_by:
            time.sleep(0.2)
        assert not [p for p in started if _alive(p)]
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in started:
            if _alive(pid):
                psutil.Process(pid).kill()
