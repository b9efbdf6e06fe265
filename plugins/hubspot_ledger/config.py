"""Deployment configuration: where things are and the defaults DESIGN.md promises.

Everything here is about the deployment (paths, connection ids, Airflow home), never about a
customer: per-customer state lives in the ledger.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
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


def prepare_airflow_home() -> Path:
    """Create and migrate the Airflow home (embedded metadata DB) once; later calls are instant."""
    apply_airflow_env_defaults()
    home = airflow_home()
    stamp = home / ".migrated"
    if stamp.exists():
        _ensure_ledger_pool(home)
        return home
    home.mkdir(parents=True, exist_ok=True)
    log.info("Preparing Airflow home at %s (first run only)", home)
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(  # noqa: S603 - our own venv's airflow binary
        [str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"airflow db migrate failed: {' '.join(tail)}")
    stamp.write_text("ok\n")
    _ensure_ledger_pool(home)
    return home


def _ensure_ledger_pool(home: Path) -> None:
    """The DAGs' tasks run in the `hubspot_ledger` pool, which must exist (ledger_pool)."""
    from hubspot_ledger.ledger_pool import ensure_pool_once

    ensure_pool_once(home)
