"""Driving a real `airflow api-server` from the endpoint tests: its environment, start and
stop, and the calls tests make to it (see conftest.py for the fixture)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from hubspot_ledger.config import PROJECT_ROOT, default_airflow_env
from hubspot_ledger.crypto import KEYS_ENV, TokenCipher
from hubspot_ledger.sandbox.testing import SandboxServer

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PREFIX = "/api/integrations/hubspot"
USERS = {"operator": ("op", "operator-password"), "viewer": ("viewer", "viewer-password")}
STARTUP_TIMEOUT = 90.0
CLI_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() \
        else ""


@dataclass
class AirflowApi:
    """The running api-server, its environment, and what tests need to talk to it."""

    url: str
    env: dict[str, str]
    home: Path
    sandbox: SandboxServer
    cipher: TokenCipher
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str = "operator") -> str:
        """A JWT of a SimpleAuthManager user, as any API client gets one."""
        if user not in self._tokens:
            response = requests.post(f"{self.url}/auth/token", timeout=10,
                                     json={"username": user, "password": USERS[user][1]})
            assert response.status_code == 201, response.text
            self._tokens[user] = response.json()["access_token"]
        return self._tokens[user]

    def call(self, method: str, path: str, *, user: str | None = "operator",
             token: str | None = None, **kwargs: Any) -> requests.Response:
        """`path` below the plugin's prefix, or Airflow's own when it starts with /api/;
        authenticated as `user` (None: anonymous) or with an explicit `token`."""
        headers = dict(kwargs.pop("headers", {}))
        bearer = token or (self.token(user) if user else None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        full = path if path.startswith("/api/") else PREFIX + path
        return requests.request(method, self.url + full, headers=headers, timeout=30,
                                **kwargs)

    def airflow(self, *args: str) -> str:
        """Run an `airflow` CLI command with the api-server's environment."""
        result = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True,
                                text=True, timeout=CLI_TIMEOUT)
        assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    def reserialize(self) -> None:
        """Parse the dags folder into the api-server's metadata DB, as the DAG processor
        would: the integrations in the ledger right now become DAGs Airflow knows."""
        self.airflow("dags", "reserialize")

    def consent(self, consent_url: str) -> tuple[str, str]:
        """Open a consent URL as the customer's browser would, stopping at HubSpot's redirect
        back to the app: (code, state)."""
        response = requests.get(consent_url, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text[:300]
        query = parse_qs(urlparse(response.headers["Location"]).query)
        return query["code"][0], query["state"][0]


def api_env(home: Path, ledger_uri: str, sandbox: SandboxServer, fernet_key: str
            ) -> dict[str, str]:
    """The api-server's environment: the project's Airflow defaults in a throw-away home,
    SimpleAuthManager with USERS, this run's ledger, the sandbox as the HubSpot app."""
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({name: pw for name, (_, pw) in USERS.items()}))
    hubspot = {"conn_type": "http", "host": sandbox.url, "login": sandbox.client_id,
               "password": sandbox.client_secret,
               "extra": {"redirect_uri": sandbox.redirect_uri,
                         "authorize_url": f"{sandbox.url}/oauth/authorize"}}
    return {
        **os.environ,
        **default_airflow_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                                       "simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{name}:{role}" for name, (role, _) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_LEDGER_DEFAULT": ledger_uri,
        "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(hubspot),
        KEYS_ENV: fernet_key,
        "HUBSPOT_LEDGER_STATE_DIR": str(home / "state"),
    }


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"airflow api-server exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"airflow api-server did not answer within {STARTUP_TIMEOUT:g}s:\n{tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the api-server and every process it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    try:  # uvicorn workers that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
