"""`make airflow`: a real local Airflow 3 deployment of this checkout, in one command.

api-server, scheduler, DAG processor and triggerer, each started as `airflow <component>` with
the project's Airflow home (`.airflow/`, prepared as `make demo` prepares it) and the settings
of `config.local_airflow_settings`: the project's DAGs and plugin, no example DAGs,
LocalExecutor with parallelism sized to the machine. Both connections are set:
`ledger_default` (the ledger is migrated first) and `hubspot_default` — the HubSpot sandbox,
started here too, unless a real HubSpot is configured (`AIRFLOW_CONN_HUBSPOT_DEFAULT` in the
environment, or a `hubspot_default` connection in Airflow's metadata DB).

Every component runs in a process group of its own, so that the terminal's Ctrl-C reaches only
this launcher, which then stops each group (SIGTERM, then SIGKILL after a grace period) and
anything the components started that left their group: nothing it started outlives it.
Components log to `$AIRFLOW_HOME/logs/local/<component>.log`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from hubspot_ledger.config import (
    DEFAULT_API_PORT,
    HUBSPOT_CONN_ID,
    apply_airflow_env_defaults,
    local_airflow_settings,
    prepare_airflow_home,
    settings_as_env,
)

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_PATH = "/api/v2/monitor/health"
STARTUP_SECONDS = 600.0  # a loaded 2-core machine takes minutes to start four components
STOP_GRACE_SECONDS = 30.0
SANDBOX_APP = {"client_id": "local-client-id", "client_secret": "local-client-secret"}


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    # Whatever the component started, seen while it ran (some leave its process group).
    descendants: set[int] = field(default_factory=set)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def start(name: str, argv: list[str], logs: Path) -> Component:
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        # A session (and process group) of its own: Ctrl-C in the terminal reaches only the
        # launcher, which stops the components in order.
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return Component(name, process, log)


def real_hubspot_configured() -> bool:
    """A HubSpot other than the sandbox: the environment's connection, or the metadata DB's."""
    if os.environ.get(f"AIRFLOW_CONN_{HUBSPOT_CONN_ID.upper()}"):
        return True
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(select(Connection.id).where(
            Connection.conn_id == HUBSPOT_CONN_ID)) is not None


def sandbox_connection(url: str, redirect_uri: str) -> str:
    return json.dumps({
        "conn_type": "http", "host": url, "login": SANDBOX_APP["client_id"],
        "password": SANDBOX_APP["client_secret"],
        "extra": {"redirect_uri": redirect_uri, "authorize_url": f"{url}/oauth/authorize"}})


def wait_until_up(components: list[Component], base_url: str, stop: threading.Event) -> bool:
    """Until the api-server answers its health check; False if a component died or stop."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        if any(c.process.poll() is not None for c in components):
            return False
        try:
            if requests.get(base_url + HEALTH_PATH, timeout=5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        stop.wait(1.0)
    return False


def _note_descendants(components: list[Component]) -> None:
    import psutil

    for component in components:
        try:
            children = psutil.Process(component.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        component.descendants.update(child.pid for child in children)


def stop_all(components: list[Component]) -> None:
    """SIGTERM to every component's process group, SIGKILL to what is left after the grace
    period, then to any descendant that had left its group."""
    import psutil

    _note_descendants(components)
    for component in reversed(components):
        _signal_group(component.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for component in components:
        try:
            component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for component in components:
        _signal_group(component.process.pid, signal.SIGKILL)
        component.process.wait()
        for pid in component.descendants:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make airflow", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("HUBSPOT_LEDGER_AIRFLOW_PORT",
                                                   DEFAULT_API_PORT)),
                        help="the api-server's port (default 8080, or "
                             "HUBSPOT_LEDGER_AIRFLOW_PORT)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the interface the api-server listens on (default 127.0.0.1)")
    parser.add_argument("--sandbox-port", type=int, default=8765,
                        help="the HubSpot sandbox's port (default 8765; 0: any free port)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apply_airflow_env_defaults()
    settings = local_airflow_settings(args.port)
    # Explicit in the environment too, so every component agrees whatever airflow.cfg says
    # (the home may have been prepared for another port).
    os.environ.update(settings_as_env(settings))
    os.environ["AIRFLOW__API__HOST"] = args.host
    base_url = settings[("api", "base_url")]

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    say("Preparing the Airflow home and the ledger")
    home = prepare_airflow_home()
    from hubspot_ledger.api import URL_PREFIX
    from hubspot_ledger.hooks.ledger import LedgerHook

    applied = LedgerHook().migrate(create_database=True)
    print(f"    Airflow home {home}; ledger "
          f"{'migrated: ' + ', '.join(applied) if applied else 'schema up to date'}")
    logs = home / "logs" / "local"
    logs.mkdir(parents=True, exist_ok=True)
    if stop.is_set():  # Ctrl-C during the set-up: nothing started yet
        return 0

    components: list[Component] = []
    try:
        if real_hubspot_configured():
            say(f"HubSpot: the configured {HUBSPOT_CONN_ID} connection (no sandbox)")
        else:
            port = args.sandbox_port or _free_port()
            redirect_uri = f"{base_url}{URL_PREFIX}/oauth-callback/"
            components.append(start("sandbox", [
                _bin("hubspot-ledger"), "sandbox", "--port", str(port), "--seed", "1",
                "--scale", "tiny", "--client-id", SANDBOX_APP["client_id"],
                "--client-secret", SANDBOX_APP["client_secret"],
                "--redirect-uri", redirect_uri,
                # Its changes (admin API) reach the api-server as HubSpot's webhooks would.
                "--webhook-url", f"{base_url}{URL_PREFIX}/webhooks/"], logs))
            os.environ[f"AIRFLOW_CONN_{HUBSPOT_CONN_ID.upper()}"] = sandbox_connection(
                f"http://127.0.0.1:{port}", redirect_uri)
            say(f"HubSpot: the sandbox at http://127.0.0.1:{port} (no real HubSpot configured:"
                f" set AIRFLOW_CONN_HUBSPOT_DEFAULT to use one)")
        for name in COMPONENTS:
            argv = [_bin("airflow"), name] + (["--port", str(args.port)]
                                               if name == "api-server" else [])
            components.append(start(name, argv, logs))
        say(f"Starting {', '.join(COMPONENTS)} (LocalExecutor, parallelism "
            f"{settings[('core', 'parallelism')]}); logs in {logs}")
        if not wait_until_up(components, base_url, stop):
            return _stopped_early(components, stop)
        _say_ready(base_url, home)
        while not stop.wait(1.0):
            _note_descendants(components)
            died = [c for c in components if c.process.poll() is not None]
            if died:
                return _stopped_early(components, stop)
        say("Stopping (Ctrl-C)")
        return 0
    finally:
        stop_all(components)
        print("    every process it started has stopped", flush=True)


def _say_ready(base_url: str, home: Path) -> None:
    from airflow.configuration import conf

    users = conf.get("core", "simple_auth_manager_users", fallback="admin:admin")
    passwords = conf.get("core", "simple_auth_manager_passwords_file", fallback="") or \
        str(home / "simple_auth_manager_passwords.json.generated")
    say(f"Airflow is up: {base_url}")
    print(f"    login: {', '.join(u.split(':')[0] for u in users.split(','))} "
          f"(Airflow's SimpleAuthManager); the password is in {passwords}", flush=True)
    print("    Ctrl-C stops everything", flush=True)


def _stopped_early(components: list[Component], stop: threading.Event) -> int:
    if stop.is_set():
        say("Stopping (Ctrl-C)")
        return 0
    for component in components:
        if component.process.poll() is not None:
            tail = component.log.read_text(errors="replace").splitlines()[-15:]
            say(f"{component.name} exited with status {component.process.returncode}; "
                f"the end of {component.log}:")
            print("\n".join(f"    {line}" for line in tail), flush=True)
    if not any(c.process.poll() is not None for c in components):
        say(f"the api-server did not answer {HEALTH_PATH} within {STARTUP_SECONDS:.0f} s")
    return 1


if __name__ == "__main__":
    sys.exit(main())
