"""docker-compose.yaml, Dockerfile and .dockerignore: the production-shaped stack (issue 15 item 8).

No Docker engine runs on the build machine, so `docker compose config` runs only where the
compose plugin exists; everywhere else these tests read the files and check what the stack
needs to start: its services and their order, volumes writable by the image's user, the
environment (executor, base URL, connections, secrets from the environment with no default), the
official init steps plus this project's, and an image holding the package but no dev tools.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubspot_ledger.config import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yaml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"

AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler",
                    "airflow-dag-processor", "airflow-worker", "airflow-triggerer"}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"}
IMAGE_USER = "50000:0"  # the official image's `airflow` user, group 0
# What must come from the environment, never from the file (compose's `${VAR:?message}`).
SECRETS = {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_DB_PASSWORD", "LEDGER_DB_PASSWORD",
           "AIRFLOW_ADMIN_PASSWORD", "HUBSPOT_LEDGER_FERNET_KEYS", "AIRFLOW_CONN_HUBSPOT_DEFAULT"}
DEV_TOOLS = ("pytest", "ruff", "mypy", "hypothesis", "hubspot-api-client", "hubspot_api_client",
             "requirements-dev", "[dev]", "hubspot_ledger_tools", "tools/", "-e ", "--editable")

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _init_script(services: dict[str, dict[str, Any]]) -> str:
    command = services["airflow-init"]["command"]
    return " ".join(command) if isinstance(command, list) else str(command)


# --- services and their order ----------------------------------------------------------------

def test_stack_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "ledger-db", "redis"}


def test_airflow_services_run_celery_with_redis(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert re.match(r"redis://(:[^@]*@)?redis:6379/", env["AIRFLOW__CELERY__BROKER_URL"]), name
        assert "@postgres/airflow" in env["AIRFLOW__CELERY__RESULT_BACKEND"], name
    assert services["airflow-worker"]["command"] == "celery worker"


def test_the_ledger_has_a_database_server_of_its_own(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert "@ledger-db:5432/ledger" in env["AIRFLOW_CONN_LEDGER_DEFAULT"], name
    data = {name: services[name]["volumes"][0].split(":")[0] for name in ("postgres", "ledger-db")}
    assert data["postgres"] != data["ledger-db"]


def test_every_service_waits_for_what_it_needs(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "ledger-db", "redis", *LONG_RUNNING):
        assert services[name]["healthcheck"]["test"], name
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        for needed in ("postgres", "ledger-db", "redis"):
            assert deps[needed]["condition"] == "service_healthy", (name, needed)
    for name in LONG_RUNNING:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == \
            "service_completed_successfully", name
    # Tasks on a worker report to the api-server's Task Execution API.
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == \
        "service_healthy"
    assert services["airflow-init"]["restart"] == "no"


# --- environment -----------------------------------------------------------------------------

def test_urls_the_api_server_needs(services: dict[str, dict[str, Any]]) -> None:
    port = services["airflow-apiserver"]["ports"][0].rsplit(":", 1)[1]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        # The OAuth redirect and Airflow's own links are built on the base URL.
        assert re.fullmatch(r"\$\{AIRFLOW_BASE_URL(:-https?://[^}]+)?\}",
                            env["AIRFLOW__API__BASE_URL"]), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == \
            f"http://airflow-apiserver:{port}/execution/", name


def test_secrets_come_from_the_environment_with_no_default(
        services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE.read_text()
    references = re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}", text)
    by_name: dict[str, set[str]] = {}
    for var, operator, _ in references:
        by_name.setdefault(var, set()).add(operator)
    for secret in SECRETS:
        assert by_name.get(secret) == {":?"}, f"{secret} must be required, never defaulted"
    env = services["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                "HUBSPOT_LEDGER_FERNET_KEYS", "AIRFLOW_CONN_HUBSPOT_DEFAULT"):
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", env[key]), key
    # .env.example names every secret and gives none of them a value.
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                   if line and not line.startswith("#"))
    for secret in SECRETS:
        assert example.get(secret) == "", secret


def test_users_of_the_auth_manager_come_from_the_environment(
        services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".FabAuthManager"), name
        assert not any(k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER") for k in env), name
    init_env = services["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_WWW_USER_USERNAME"].startswith("${AIRFLOW_ADMIN_USER")
    assert init_env["_AIRFLOW_WWW_USER_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    # Only the one-off init sees the admin's password.
    for name in LONG_RUNNING:
        assert "_AIRFLOW_WWW_USER_PASSWORD" not in services[name]["environment"], name


# --- init --------------------------------------------------------------------------------------

def test_init_runs_the_official_steps_then_the_projects(
        services: dict[str, dict[str, Any]]) -> None:
    script = _init_script(services)
    steps = [
        "_AIRFLOW_DB_MIGRATE=true _AIRFLOW_WWW_USER_CREATE=true /entrypoint airflow",  # db, user
        "airflow connections get ledger_default",
        "airflow connections get hubspot_default",
        "hubspot-ledger migrate",
        "airflow pools set hubspot_ledger",
    ]
    positions = [script.find(step) for step in steps]
    assert -1 not in positions, dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions), "each step needs the one before it"
    assert "set -euo pipefail" in script  # a failing step fails the init, so nothing starts
    assert services["airflow-init"]["entrypoint"] == "/bin/bash"


# --- writable paths ----------------------------------------------------------------------------

def test_airflow_services_run_as_the_image_user_on_named_volumes(
        compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        service = services[name]
        assert service["user"] == IMAGE_USER, name
        for mount in service["volumes"]:
            source = mount.split(":")[0]
            assert source in compose["volumes"], f"{name}: {mount} is not a named volume"
    assert services["airflow-init"]["user"] == "0:0"  # only to hand the volumes over


def test_every_mounted_path_is_writable_by_the_image_user(
        services: dict[str, dict[str, Any]]) -> None:
    targets = {m.split(":")[1] for n in AIRFLOW_SERVICES for m in services[n]["volumes"]}
    env = services["airflow-scheduler"]["environment"]
    assert env["HUBSPOT_LEDGER_STATE_DIR"] in targets
    script = _init_script(services)
    owner = re.search(r"chown -R (\S+) ([^\n]+)", script)
    assert owner is not None and owner.group(1) == IMAGE_USER
    assert set(owner.group(2).split()) >= targets
    # A fresh named volume takes the owner of the image's directory: the image creates the
    # paths it does not already ship (AIRFLOW_HOME/logs comes with the official image).
    made = " ".join(args for op, args in _final_stage() if op == "RUN" and "mkdir" in args)
    for target in targets - {"/opt/airflow/logs"}:
        assert target in made, target
    assert not any(op == "USER" and args.strip() not in ("airflow", "50000")
                   for op, args in _final_stage())
    # Every RUN runs as that user: what it works on must be its own (root would own a COPY).
    for op, args in _dockerfile_instructions():
        if op in ("COPY", "ADD"):
            assert "--chown=airflow:0" in args.split(), f"{op} {args}"


# --- image ------------------------------------------------------------------------------------

def test_image_installs_the_package_on_the_official_constraints() -> None:
    instructions = _dockerfile_instructions()
    froms = [args for op, args in instructions if op == "FROM"]
    assert all(f.startswith("apache/airflow:${AIRFLOW_VERSION}-python") for f in froms)
    version = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.M))
    assert version["AIRFLOW_VERSION"] == "3.3.2"
    install = [args for op, args in _final_stage() if op == "RUN" and "pip install" in args]
    assert len(install) == 1
    words = shlex.split(install[0].replace(";", " ; "))
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install[0]
    assert any(re.fullmatch(r"/\S+-dist/hubspot_ledger-\*\.whl", w) for w in words)
    assert "${OFFICIAL_CONSTRAINTS}" in install[0] and "pip check" in install[0]
    env = " ".join(args for op, args in _final_stage() if op == "ENV")
    assert "OFFICIAL_CONSTRAINTS=/home/airflow/constraints.txt" in env
    assert "command -v hubspot-ledger" in install[0]
    wheel = [args for op, args in instructions if op == "RUN" and "pip wheel" in args]
    assert wheel and "--no-deps" in wheel[0]


def test_image_carries_no_dev_tools_and_no_checkout() -> None:
    for op, args in _dockerfile_instructions():
        if op in ("RUN", "COPY", "ADD"):
            for tool in DEV_TOOLS:
                assert tool not in args, f"{op} {args}"
        if op in ("COPY", "ADD") and "--from=" not in args:
            sources = [w for w in args.split() if not w.startswith("--")][:-1]
            assert "." not in sources and "./" not in sources, f"{op} copies the whole context"
            for source in sources:
                assert not source.startswith(("tests", "tools", ".venv", ".airflow")), source


def test_image_carries_the_dag_file_and_the_plugin_where_airflow_looks(
        services: dict[str, dict[str, Any]]) -> None:
    copies = [args.split() for op, args in _final_stage() if op == "COPY"]
    copied = {words[-2]: words[-1] for words in copies}
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        dags, plugins = env["AIRFLOW__CORE__DAGS_FOLDER"], env["AIRFLOW__CORE__PLUGINS_FOLDER"]
        # The DAG files (one per shard of the integrations) as a folder, into the DAGs folder.
        assert sorted((PROJECT_ROOT / "dags").glob("*.py")), "no DAG file"
        assert copied["dags/"] == f"{dags}/", name
        for plugin in sorted((PROJECT_ROOT / "plugins").glob("*.py")):
            assert copied[f"plugins/{plugin.name}"] == f"{plugins}/{plugin.name}", name


# --- build context ----------------------------------------------------------------------------

def _glob(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` stay within a path segment, `**` spans
    segments, `[...]` is a class (Go's filepath.Match, as Docker uses it)."""
    out = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern):
        if token == "**/":
            out.append("(?:.*/)?")
        elif token == "**":
            out.append(".*")
        elif token == "*":
            out.append("[^/]*")
        elif token == "?":
            out.append("[^/]")
        elif token.startswith("["):
            out.append(token)
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (excludes, pattern) in order; Docker's last matching rule wins."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((not line.startswith("!"), _glob(line.lstrip("!").strip("/"))))
    return rules


def _in_context(path: str) -> bool:
    """Whether Docker sends `path` (relative to the project root) with the build context: a rule
    matching the path or any of its parent directories applies to it."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for excludes, pattern in _ignore_rules():
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = excludes
    return not excluded


def test_build_context_leaves_out_the_checkouts_baggage() -> None:
    for path in (".venv/lib/python3.11/site-packages/airflow/__init__.py", ".git/HEAD",
                 ".airflow/airflow.cfg", ".airflow-test/airflow.db", ".demo/ledger.txt", ".env",
                 ".pytest_cache/v/cache", ".mypy_cache/3.11/x.json", "tests/test_compose.py",
                 "tools/hubspot_ledger_tools/__init__.py", "bench/report.md", "build/lib/x.py",
                 "plugins/hubspot_ledger/__pycache__/cli.cpython-311.pyc",
                 "plugins/hubspot_ledger.egg-info/PKG-INFO", "requirements-dev.txt"):
        assert not _in_context(path), path


def test_build_context_holds_every_file_the_dockerfile_copies() -> None:
    sources = [word for op, args in _dockerfile_instructions()
               if op == "COPY" and "--from=" not in args
               for word in [w for w in args.split() if not w.startswith("--")][:-1]]
    assert sources
    for source in sources:
        root = PROJECT_ROOT / source
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()
                                                and "__pycache__" not in p.parts]
        assert files, source
        for file in files:
            assert _in_context(file.relative_to(PROJECT_ROOT).as_posix()), file


# --- docker compose itself --------------------------------------------------------------------

def _compose_plugin_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_plugin_available(), reason="docker compose plugin not installed")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    env = {**os.environ, **{secret: "s3cret" for secret in SECRETS},
           "AIRFLOW_CONN_HUBSPOT_DEFAULT": '{"conn_type": "http"}'}
    result = subprocess.run(["docker", "compose", "--env-file", os.devnull, "-f", str(COMPOSE),
                             "config", "-q"],
                            capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not _compose_plugin_available(), reason="docker compose plugin not installed")
def test_docker_compose_refuses_to_start_without_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    result = subprocess.run(["docker", "compose", "--env-file", os.devnull, "-f", str(COMPOSE),
                             "config", "-q"],
                            capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    assert result.returncode != 0 and "in .env" in result.stderr
