"""A real Airflow deployment of this checkout, started and stopped by a harness (the Celery
test, the benchmark's fleet phase).

    with Deployment(DeploymentSettings(executor="CeleryExecutor", celery_workers=2),
                    env={"AIRFLOW_CONN_LEDGER_DEFAULT": uri, ...}) as airflow:
        airflow.wait_for_dags(dag_ids)
        airflow.unpause(dag_ids)               # one request: their scheduled runs start together
        runs = airflow.wait_for_runs(dag_ids)  # the metadata database says when they are done

What runs, each a process of its own (as in docker-compose.yaml): a PostgreSQL metadata
database of its own on the ledger's server (created, `airflow db migrate`d, dropped at the end),
the api-server (tasks reach Airflow only through its execution API), the DAG processor, the
scheduler, and either LocalExecutor (the scheduler's own worker processes) or CeleryExecutor with
N `airflow celery worker`s on a Redis broker: the one at 127.0.0.1:6379 when it answers, else a
`redis-server` started here. The Airflow home is a temporary folder; every process started here
is stopped (its process group: the worker's task processes go with it), whatever happens.

Several deployments (other checkouts, other tests) may share the machine, the PostgreSQL server
and the Redis server: each one has its own metadata database, Celery queue, Redis database,
ports and Airflow home, so none takes another's tasks.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import requests
from cryptography.fernet import Fernet
from psycopg import sql

from hubspot_ledger.config import DEFAULT_LEDGER_URI, PROJECT_ROOT
from hubspot_ledger.dag_factory import DAG_ID_PREFIX
from hubspot_ledger_tools.worker_name import WORKER_NAME_ENV

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
FINISHED = ("success", "failed")
T = TypeVar("T")


class DeploymentError(RuntimeError):
    """The deployment did not start, or did not reach the state waited for."""


@dataclass(frozen=True)
class DeploymentSettings:
    executor: str = "LocalExecutor"  # or "CeleryExecutor"
    parallelism: int = 16  # task slots of the scheduler (LocalExecutor: its worker processes)
    celery_workers: int = 2
    worker_concurrency: int = 2  # task slots of each Celery worker
    name: str = "harness"  # part of the metadata database's name
    startup_timeout: float = 300.0


@dataclass
class Started:
    """One process this harness started, and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class TaskRun:
    """A task instance as the metadata database records it."""

    dag_id: str
    run_id: str
    task_id: str
    state: str | None
    hostname: str
    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True)
class DagRun:
    dag_id: str
    run_id: str
    run_type: str
    state: str
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def wall_s(self) -> float | None:
        return (self.end - self.start).total_seconds() if self.start and self.end else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.5,
         alive: Callable[[], None] | None = None) -> T:
    """`check()` until it answers something, or fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def database_uri(server_uri: str, name: str) -> str:
    return urlunsplit(urlsplit(server_uri)._replace(path=f"/{name}"))


def redis_answers(host: str = REDIS_HOST, port: int = REDIS_PORT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Deployment:
    """See the module's docstring. `env` goes to every Airflow process (the two connections,
    the token keys, the project's settings)."""

    def __init__(self, settings: DeploymentSettings, env: Mapping[str, str] | None = None,
                 server_uri: str | None = None) -> None:
        self.settings = settings
        self.extra_env = dict(env or {})
        base = server_uri or self.extra_env.get("AIRFLOW_CONN_LEDGER_DEFAULT") or os.environ.get(
            "AIRFLOW_CONN_LEDGER_DEFAULT") or DEFAULT_LEDGER_URI
        suffix = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.db_name = f"airflow_{settings.name}_{suffix}"
        self.admin_uri = database_uri(base, "postgres")
        self.metadata_uri = database_uri(base, self.db_name)
        self.queue = f"hubspot_ledger_{suffix}"
        self.home = Path(tempfile.mkdtemp(prefix=f"airflow-{settings.name}-"))
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.started: list[Started] = []
        self.redis_url: str | None = None
        self.session = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> Deployment:
        try:
            self._create_database()
            if self.settings.executor == "CeleryExecutor":
                self.redis_url = self._broker()
            self._migrate()
            self._spawn("api-server", ["api-server", "--port", str(self.api_port),
                                       "--host", "127.0.0.1", "--workers", "1"])
            poll("the api-server", self._api_healthy, self.settings.startup_timeout,
                 alive=self.check_alive)
            self._spawn("dag-processor", ["dag-processor"])
            self._spawn("scheduler", ["scheduler"],
                        {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})
            if self.settings.executor == "CeleryExecutor":
                for n in range(1, self.settings.celery_workers + 1):
                    self._start_celery_worker(f"worker{n}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Every process started here, then the metadata database and the Airflow home."""
        for started in reversed(self.started):
            _signal_group(started.process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for started in reversed(self.started):
            try:
                started.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(started.process, signal.SIGKILL)  # stragglers of the group too
            try:
                started.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.started.clear()
        self.session.close()
        try:
            self._drop_database()
        finally:
            if not os.environ.get("HUBSPOT_LEDGER_KEEP_AIRFLOW_HOME"):
                shutil.rmtree(self.home, ignore_errors=True)

    def check_alive(self) -> None:
        """Fail at once, with the end of its log, when a process of the deployment died."""
        for started in self.started:
            code = started.process.poll()
            if code is not None:
                raise DeploymentError(f"{started.name} exited with {code}:\n{started.tail()}")

    # -- set-up ----------------------------------------------------------------------------------

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """What every Airflow process of this deployment runs with."""
        path = os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "tools"),
                                os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = {
            **os.environ,
            "PYTHONPATH": path,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Created paused: the harness unpauses them all at once when it is ready.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": self.settings.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.settings.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
            "AIRFLOW__CORE__FERNET_KEY": self.extra_env.get("AIRFLOW__CORE__FERNET_KEY")
            or Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_uri.replace(
                "postgresql://", "postgresql+psycopg2://", 1),
            # Small pools: the PostgreSQL server is shared with the ledger and other users.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # On a busy machine the api-server may answer a task's call after Airflow's 5 s
            # default; the retry of a call that did land is then refused ("already running")
            # and the task fails without having run. Patience instead.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
            "AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS": "10",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "hubspot_ledger_tools.worker_name.worker_name",
            "HUBSPOT_LEDGER_STATE_DIR": str(self.home / "hubspot_ledger"),
            **self.extra_env,
        }
        if self.redis_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.redis_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + self.metadata_uri
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.settings.worker_concurrency)
        env.pop(WORKER_NAME_ENV, None)
        return {**env, **(extra or {})}

    @property
    def _jwt_secret(self) -> str:
        if not hasattr(self, "_secret"):
            self._secret = secrets.token_urlsafe(32)
        return self._secret

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_uri, autocommit=True, connect_timeout=5)

    def _create_database(self) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))

    def _drop_database(self) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(self.db_name)))

    def _airflow(self) -> str:
        return str(Path(sys.executable).with_name("airflow"))

    def _migrate(self) -> None:
        log = self.home / "db-migrate.log"
        with log.open("wb") as out:
            code = subprocess.run([self._airflow(), "db", "migrate"],  # noqa: S603 - our venv
                                  stdout=out, stderr=subprocess.STDOUT, env=self.environment(),
                                  check=False, timeout=self.settings.startup_timeout).returncode
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise DeploymentError("airflow db migrate failed:\n" + "\n".join(tail))

    def _spawn(self, name: str, args: Sequence[str], extra: Mapping[str, str] | None = None
               ) -> Started:
        log = self.home / f"{name}.log"
        with log.open("wb") as out:
            # A session of its own: stopping it stops its children (the task processes) too.
            process = subprocess.Popen(  # noqa: S603 - our own venv's airflow
                [self._airflow(), *args], stdout=out, stderr=subprocess.STDOUT,
                env=self.environment(extra), start_new_session=True)
        started = Started(name, process, log)
        self.started.append(started)
        return started

    def _start_celery_worker(self, name: str) -> None:
        started = self._spawn(name, ["celery", "worker", "--celery-hostname", f"{name}@%h",
                                     "--queues", self.queue, "--skip-serve-logs",
                                     "--without-gossip", "--without-mingle"],
                              {WORKER_NAME_ENV: name})
        # Celery says so when the worker takes tasks; waiting for it gives every worker its
        # share of the first tasks.
        poll(f"Celery worker {name}", lambda: " ready." in started.tail(200),
             self.settings.startup_timeout, alive=self.check_alive)

    def _broker(self) -> str:
        """The Redis at 127.0.0.1:6379 if it answers, else one started here (Debian's
        `redis-server`); a database number of its own for this deployment."""
        database = random.randint(1, 15)  # noqa: S311 - spreading deployments, not a secret
        if redis_answers():
            return f"redis://{REDIS_HOST}:{REDIS_PORT}/{database}"
        binary = shutil.which("redis-server")
        if binary is None:
            raise DeploymentError("No Redis answers at 127.0.0.1:6379 and redis-server is not "
                                  "installed: apt-get install -y redis-server")
        port = free_port()
        log = self.home / "redis.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - Debian's redis-server, no shell
                [binary, "--port", str(port), "--bind", REDIS_HOST, "--save", "",
                 "--appendonly", "no"], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.started.append(Started("redis-server", process, log))
        poll("redis-server", lambda: redis_answers(REDIS_HOST, port), 30,
             alive=self.check_alive)
        return f"redis://{REDIS_HOST}:{port}/{database}"

    def _api_healthy(self) -> bool:
        try:
            return self.session.get(f"{self.url}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            return False

    # -- the metadata database (observable state) ------------------------------------------------

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.metadata_uri, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(statement, params).fetchall()

    def parsed_dags(self) -> set[str]:
        """DAGs the DAG processor has serialized and not marked stale."""
        rows = self.query("SELECT d.dag_id FROM dag d JOIN serialized_dag s USING (dag_id) "
                          "WHERE NOT d.is_stale")
        return {r[0] for r in rows}

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = 300) -> None:
        wanted = set(dag_ids)
        poll(f"the DAG processor to parse {len(wanted)} DAGs",
             lambda: wanted <= self.parsed_dags(), timeout, alive=self.check_alive)

    def dag_runs(self, dag_ids: Sequence[str]) -> list[DagRun]:
        rows = self.query("SELECT dag_id, run_id, run_type, state, start_date, end_date "
                          "FROM dag_run WHERE dag_id = ANY(%s) ORDER BY id", [list(dag_ids)])
        return [DagRun(*r) for r in rows]

    def task_runs(self, dag_ids: Sequence[str]) -> list[TaskRun]:
        rows = self.query("SELECT dag_id, run_id, task_id, state, coalesce(hostname, ''), "
                          "start_date, end_date FROM task_instance WHERE dag_id = ANY(%s) "
                          "ORDER BY start_date", [list(dag_ids)])
        return [TaskRun(*r) for r in rows]

    def running_tasks(self) -> int:
        row = self.query("SELECT count(*) FROM task_instance WHERE state = 'running'")
        return int(row[0][0])

    def wait_for_runs(self, dag_ids: Sequence[str], timeout: float,
                      run_ids: Mapping[str, str] | None = None) -> dict[str, DagRun]:
        """Each DAG's first run (or the run named in `run_ids`) once it has finished."""
        def finished() -> dict[str, DagRun] | None:
            found: dict[str, DagRun] = {}
            for run in self.dag_runs(dag_ids):
                wanted = run_ids.get(run.dag_id) if run_ids else None
                if (run.run_id == wanted) if wanted else run.dag_id not in found:
                    found[run.dag_id] = run
            done = len(found) == len(set(dag_ids)) and all(
                r.state in FINISHED for r in found.values())
            return found if done else None
        return poll(f"the runs of {len(set(dag_ids))} DAGs to finish", finished, timeout,
                    interval=1.0, alive=self.check_alive)

    # -- the REST API (what an operator would use) -----------------------------------------------

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}/api/v2{path}", timeout=60,
                                        **kwargs)
        if not response.ok:
            raise DeploymentError(f"{method} /api/v2{path}: {response.status_code} "
                                  f"{response.text[:500]}")
        return response.json()

    def set_paused(self, paused: bool, dag_id_pattern: str = f"{DAG_ID_PREFIX}%",
                   limit: int = 10_000) -> int:
        """Pause or unpause every DAG whose id matches `dag_id_pattern` (SQL LIKE), in one
        request (one transaction: the scheduler sees them change together)."""
        body = self._api("PATCH", "/dags", json={"is_paused": paused},
                         params={"dag_id_pattern": dag_id_pattern, "limit": limit,
                                 "update_mask": "is_paused"})
        return int(body.get("total_entries", 0))

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        body = self._api("POST", f"/dags/{dag_id}/dagRuns",
                         json={"logical_date": None, "conf": dict(conf or {})})
        return str(body["dag_run_id"])

    # -- what the workers spent ------------------------------------------------------------------

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that run tasks: the Celery workers, or the scheduler's children
        (LocalExecutor's workers and the task processes they supervise)."""
        found: list[psutil.Process] = []
        for started in self.started:
            if started.name.startswith("worker"):
                found.append(psutil.Process(started.process.pid))
            elif started.name == "scheduler" and self.settings.executor == "LocalExecutor":
                found += psutil.Process(started.process.pid).children()
        return found

    def worker_cpu_seconds(self) -> float:
        """CPU seconds (user + system) the task-running processes and every descendant of
        theirs have used so far, the exited ones included (their parents reaped them, so their
        time is in the parents' `children_*`)."""
        total = 0.0
        for root in self.worker_processes():
            for process in [root, *_descendants(root)]:
                total += _cpu(process)
        return total


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return list(process.children(recursive=True))
    except psutil.Error:
        return []


def _cpu(process: psutil.Process) -> float:
    try:
        t = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system + t.children_user + t.children_system)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group this harness created for `process` (its own session)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class ConnectionSampler:
    """Samples, in a thread, how many sessions are open on one database (pg_stat_activity),
    and keeps the peak; with `running` (a count of the task instances running then, from the
    metadata database), what ran at the peak."""

    uri: str
    database: str
    running: Callable[[], int] | None = None
    interval: float = 0.25
    peak: int = 0
    running_at_peak: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ConnectionSampler:
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-sampler")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.uri, autocommit=True, connect_timeout=5) as conn:
            while not self._stop.wait(self.interval):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                    [self.database]).fetchone()
                count = int(row[0]) if row else 0
                self.samples += 1
                if count > self.peak:
                    self.peak = count
                    self.running_at_peak = self.running() if self.running else 0

    def running_tasks(self) -> int:
        return self.running() if self.running else 0
