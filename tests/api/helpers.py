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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from support import HUBSPOT_CONN_ENV, consent, hubspot_connection

from hubspot_ledger.config import PROJECT_ROOT, default_airflow_env
from hubspot_ledger.crypto import KEYS_ENV, TokenCipher
from hubspot_ledger_tools.sandbox.testing import SandboxServer

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PREFIX = "/api/integrations/hubspot"
# SimpleAuthManager users: name -> (Airflow role, password). `operator` and `viewer` are members
# of every organization the api tests' `books` makes (conftest.py); the tenant tests give
# `alice`, `bob` and `carol` memberships of their own; `admin` is an Airflow admin, no member.
USERS = {"operator": ("op", "operator-password"), "viewer": ("viewer", "viewer-password"),
         "admin": ("admin", "admin-password"), "alice": ("user", "alice-password"),
         "bob": ("user", "bob-password"), "carol": ("viewer", "carol-password")}
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
    previous_key: str = ""  # listed after the current one: a key rotation in progress
    pid: int = 0
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        """Everything the api-server wrote (stdout and stderr), its access log included."""
        return self.home / "api-server.log"

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
        return consent(consent_url)


def api_env(home: Path, ledger_uri: str, sandbox: SandboxServer, fernet_keys: str
            ) -> dict[str, str]:
    """The api-server's environment: the project's Airflow defaults in a throw-away home,
    SimpleAuthManager with USERS, this run's ledger, the sandbox as the HubSpot app, the token
    keys (comma-separated, newest first), and INFO logging so that the access log is written."""
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({name: pw for name, (_, pw) in USERS.items()}))
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
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_LEDGER_DEFAULT": ledger_uri,
        HUBSPOT_CONN_ENV: hubspot_connection(sandbox),
        KEYS_ENV: fernet_keys,
        "HUBSPOT_LEDGER_STATE_DIR": str(home / "state"),
    }


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"airflow api-server exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=5).ok:
                return
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or a loaded machine
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


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send (see raw_request)
    hung_up: bool  # the server closed the connection while the client was still sending

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(url: str, method: str, path: str, headers: dict[str, str],
                body: Iterator[bytes], *, timeout: float = 20.0) -> RawResponse:
    """One HTTP/1.1 request over a plain socket, its body sent from `body` by a thread while
    this one reads the answer: what a client streaming a huge body sees, without buffering it
    (`requests` sends the whole body before it reads anything). The thread goes on sending
    after the answer, until the body is exhausted or the server hangs up (`hung_up`)."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": parsed.netloc, **headers}.items())
    sent = 0
    hung_up = False

    def send_body() -> None:
        nonlocal sent, hung_up
        try:
            for chunk in body:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # reset or broken pipe: the server closed the connection
            hung_up = True

    sock.sendall(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode())
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed before an answer: {received!r}")
            received += data
        raw_head, _, rest = received.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        answer_headers = {k.strip().lower(): v.strip()
                          for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(answer_headers.get("content-length", "0"))
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        sender.join(timeout=timeout)
    finally:
        sock.close()
        sender.join(timeout=timeout)
    return RawResponse(status=int(lines[0].split()[1]), headers=answer_headers,
                       body=rest[:length], sent=sent, hung_up=hung_up)


def process_tree_rss(pid: int) -> int:
    """Resident memory of a process and its descendants, in bytes."""
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
