"""Deployment configuration: where things are and the defaults DESIGN.md promises.

Everything here is about the deployment (paths, connection ids, Airflow home), never about a
customer: per-customer state lives in the ledger.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # a checkout's root (tools, the demo)
# Package data, so that an installed wheel finds them too (`hubspot-ledger migrate` anywhere);
# include/migrations and include/mappings in a checkout are links to the same folders.
_DATA = files("hubspot_ledger") / "data"
MIGRATIONS_DIR = Path(str(_DATA / "migrations"))
MAPPINGS_DIR = Path(str(_DATA / "mappings"))

LEDGER_CONN_ID = "ledger_default"
HUBSPOT_CONN_ID = "hubspot_default"
DEFAULT_LEDGER_URI = "postgresql://postgres@127.0.0.1:5432/ledger"
DEFAULT_HUBSPOT_API = "https://api.hubapi.com"


DEFAULT_API_PORT = 8080
# Environment variables that hand a deployment's key to this project (crypto.py) or to Airflow.
KEY_ENVS = ("HUBSPOT_LEDGER_FERNET_KEYS", "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__CORE__FERNET_KEY_CMD", "AIRFLOW__CORE__FERNET_KEY_SECRET")
# A Fernet key is 32 random bytes, url-safe base64: any python3 makes one (no packages needed).
GENERATE_KEY_COMMAND = (
    "export HUBSPOT_LEDGER_FERNET_KEYS=\"$(python3 -c 'import base64, os; "
    "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')\"")


def machine_parallelism() -> int:
    """Task slots for a local deployment: two per CPU this process may use (Airflow's default
    of 32 spawns 32 workers on a 2-core machine)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(2, 2 * cpus)


def local_airflow_settings(port: int = DEFAULT_API_PORT) -> dict[tuple[str, str], str]:
    """What a local Airflow of this checkout runs with, by (section, option): the project's DAGs
    and plugin, no examples, LocalExecutor sized to the machine, the api-server on `port`.
    `prepare_airflow_home` writes them into airflow.cfg and `make airflow` exports them, so
    `airflow standalone` or `airflow dags list` with AIRFLOW_HOME=.airflow see the same."""
    base_url = f"http://localhost:{port}"
    return {
        ("core", "dags_folder"): str(PROJECT_ROOT / "dags"),
        ("core", "plugins_folder"): str(PROJECT_ROOT / "plugins"),
        ("core", "load_examples"): "False",
        ("core", "dags_are_paused_at_creation"): "False",
        ("core", "executor"): "LocalExecutor",
        ("core", "parallelism"): str(machine_parallelism()),
        ("core", "execution_api_server_url"): f"{base_url}/execution/",
        ("api", "port"): str(port),
        ("api", "base_url"): base_url,
        ("logging", "logging_level"): "INFO",
    }


def settings_as_env(settings: dict[tuple[str, str], str]) -> dict[str, str]:
    return {f"AIRFLOW__{section.upper()}__{option.upper()}": value
            for (section, option), value in settings.items()}


def default_airflow_env() -> dict[str, str]:
    """The environment a local Airflow of this project runs with, unless already set."""
    home = PROJECT_ROOT / ".airflow"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_LEDGER_DEFAULT": DEFAULT_LEDGER_URI,
    }


def apply_airflow_env_defaults() -> None:
    """Fill in the project's Airflow environment without overriding what the operator set.

    Must run before `airflow` is imported: Airflow reads its configuration at import time.
    """
    for key, value in default_airflow_env().items():
        os.environ.setdefault(key, value)


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", default_airflow_env()["AIRFLOW_HOME"]))


def state_dir() -> Path:
    """Where this deployment keeps local state (e.g. the DAG factory's last known integrations)."""
    configured = os.environ.get("HUBSPOT_LEDGER_STATE_DIR")
    return Path(configured) if configured else airflow_home() / "hubspot_ledger"


def is_checkout_home(home: Path | None = None) -> bool:
    """Whether the Airflow home belongs to this checkout (inside it: `.airflow/`, the tests'
    `.airflow-test/`), so that the project may prepare it and keep a key there. A deployment's
    home (elsewhere, or an installed wheel) gets its key from the deployment."""
    home = (home or airflow_home()).resolve()
    is_checkout = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "dags").is_dir()
    return is_checkout and home.is_relative_to(PROJECT_ROOT.resolve())


def key_is_supplied(home: Path | None = None) -> bool:
    """Whether an encryption key for the tokens is configured (environment or airflow.cfg),
    read without importing Airflow."""
    if any(os.environ.get(name, "").strip() for name in KEY_ENVS):
        return True
    cfg = Path(os.environ.get("AIRFLOW_CONFIG") or (home or airflow_home()) / "airflow.cfg")
    return cfg.is_file() and bool(_cfg_value(cfg.read_text(), "core", "fernet_key"))


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One preparation at a time (several CLI calls or test workers may start together)."""
    with open(home / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare_airflow_home() -> Path:
    """Create and migrate the Airflow home (embedded metadata DB) once; later calls are instant.

    Airflow writes airflow.cfg on its first command, with a Fernet key it generates (kept
    there: the tokens encrypted under it are readable only with it); in a checkout's home the
    project's local settings (`local_airflow_settings`) are then written into it. The key's
    birth is said once on stderr.
    """
    apply_airflow_env_defaults()
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "airflow.cfg"
    with _home_lock(home):
        new_cfg = not cfg.exists()
        if new_cfg or not (home / ".migrated").exists():
            _migrate_metadata_db(home)
        if is_checkout_home(home):  # a deployment's airflow.cfg is the deployment's
            _write_settings(cfg, local_airflow_settings())
        if new_cfg and not any(os.environ.get(name, "").strip() for name in KEY_ENVS) \
                and _cfg_value(cfg.read_text(), "core", "fernet_key"):
            print(f"Prepared the Airflow home {home} (first use): a new Fernet key, which "
                  f"encrypts the HubSpot tokens, is kept in {cfg}; keep that file (tokens "
                  "stored under the key cannot be read without it)", file=sys.stderr,
                  flush=True)
    _ensure_ledger_pool(home)
    return home


def _migrate_metadata_db(home: Path) -> None:
    log.info("Preparing Airflow home at %s (first run only)", home)
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(  # noqa: S603 - our own venv's airflow binary
        [str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"airflow db migrate failed: {' '.join(tail)}")
    (home / ".migrated").write_text("ok\n")


_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")


def _cfg_value(text: str, section: str, option: str) -> str | None:
    """An option's value in airflow.cfg text (Airflow's file is plain INI)."""
    current = None
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            current = header["name"]
        elif current == section and re.match(rf"^{re.escape(option)}\s*=", line):
            return line.split("=", 1)[1].strip()
    return None


def _write_settings(cfg: Path, settings: dict[tuple[str, str], str]) -> None:
    """Set options in airflow.cfg in place (comments and the other options kept); written only
    when something changes."""
    text = cfg.read_text()
    lines = text.splitlines()
    for (section, option), value in settings.items():
        lines = _set_option(lines, section, option, value)
    updated = "\n".join(lines) + "\n"
    if updated != text:
        cfg.write_text(updated)


def _set_option(lines: list[str], section: str, option: str, value: str) -> list[str]:
    current, end = None, None
    pattern = re.compile(rf"^{re.escape(option)}\s*=")
    for index, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            if current == section:
                end = index
                break
            current = header["name"]
        elif current == section and pattern.match(line):
            return [*lines[:index], f"{option} = {value}", *lines[index + 1:]]
    if current == section and end is None:
        end = len(lines)
    if end is None:
        return [*lines, "", f"[{section}]", f"{option} = {value}"]
    return [*lines[:end], f"{option} = {value}", *lines[end:]]


def _ensure_ledger_pool(home: Path) -> None:
    """The DAGs' tasks run in the `hubspot_ledger` pool, which must exist (ledger_pool)."""
    from hubspot_ledger.ledger_pool import ensure_pool_once

    ensure_pool_once(home)
