"""One DAG per HubSpot integration in the ledger (DESIGN.md, "Data flow").

The DAG file calls `build_dags()` at parse time. The factory's only I/O is one bounded read of
the ledger (which integrations exist). When the ledger cannot be read, the last list that was
read successfully is served from a cache file, so an outage never makes the DAGs disappear.

A DAG is `hubspot_sync__integration_<id>`: its id, tasks and schedule never depend on the
organization's name nor on the integration's status or settings, so renaming an organization
keeps its DAG's history and a status change is no new DAG version. Its steps are Python
operators whose bodies are in `sync.tasks`, all in the deployment's ledger pool (`ledger_pool`).

Why operators and not TaskFlow `@task` (issue 11 allows either, with a reason): the DAG
processor builds every integration's DAG at each parse, and a TaskFlow task costs about 50 %
more to build than the operator it wraps (measured: 6.7 against 4.4 ms of CPU per DAG of eight
steps); at thousands of integrations parse time is what bounds a deployment (bench/README.md).
TaskFlow's gains — XCom passing between tasks — do not apply: the steps hand each other data
through the ledger's staging, never through XCom.

The DAGs are spread over `SHARDS` DAG files (`dags/hubspot_sync_<k>.py` builds the integrations
whose id is k modulo `SHARDS`): the DAG processor parses files side by side
(`[dag_processor] parsing_processes`), and each file stays far from Airflow's 30-second import
time-out at ten thousand integrations, where one file of every DAG would not.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, Param, chain, get_parsing_context

from hubspot_ledger import ledger_pool
from hubspot_ledger.config import state_dir
from hubspot_ledger.load.records import IntegrationSummary
from hubspot_ledger.sync import tasks
from hubspot_ledger.timetable import SyncTimetable
from hubspot_ledger.webhooks.asset import ASSET_GROUP, asset_name, asset_uri

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "hubspot_sync__"
# How many DAG files share the integrations (README "DAGs": changing it moves DAGs between files,
# which Airflow follows by DAG id, so history is kept; the files must match, a test checks).
SHARDS = 8
# Parsing must stay well inside Airflow's 30 s import timeout even when the ledger hangs.
LIST_TIMEOUT_SECONDS = float(os.environ.get("HUBSPOT_LEDGER_PARSE_TIMEOUT", "3"))
# A fixed start date: a moving one would make every parse a new DAG version.
START_DATE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def _seconds(name: str, default: float) -> dt.timedelta:
    return dt.timedelta(seconds=float(os.environ.get(name, default)))


# Bounded waiting (issue 13): no step may hang a tenant's DAG, whose runs never overlap. A sync
# step's time-out covers a large portal's reads and writes (the write lock never waits); the light
# steps (setup check, token, branch, report) answer in seconds, or after the token endpoint's
# retries. Past the DAG run time-out the scheduler fails the run, so the next one can start
# (and settles the stuck run's row, see sync.tasks). Read when the DAG is built.
def step_timeout() -> dt.timedelta:
    return _seconds("HUBSPOT_LEDGER_STEP_TIMEOUT_SECONDS", 2 * 3600)


def task_timeout() -> dt.timedelta:
    return _seconds("HUBSPOT_LEDGER_TASK_TIMEOUT_SECONDS", 15 * 60)


def dagrun_timeout() -> dt.timedelta:
    return _seconds("HUBSPOT_LEDGER_DAGRUN_TIMEOUT_SECONDS", 6 * 3600)


DEFAULT_ARGS = {
    "owner": "hubspot-ledger",
    "retries": 2,
    # Overridable so that tests and `hubspot-ledger sync` runs of a flaky sandbox need not
    # wait out production's back-off.
    "retry_delay": dt.timedelta(
        seconds=float(os.environ.get("HUBSPOT_LEDGER_RETRY_DELAY_SECONDS", "60"))),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=15),
}

BRANCH_TASK = "branch_on_sync_invoices"
# Task ids are the names of their bodies in hubspot_ledger.sync.tasks.
STEPS = ("validate_setup", "refresh_token", tasks.INVOICES_TASK, tasks.PRODUCTS_TASK,
         tasks.COMPANIES_TASK, tasks.DEALS_TASK, "report")
# The steps that read HubSpot and write the ledger: the long time-out, and the pool slots of
# the ledger connections they hold (ledger_pool).
SYNC_STEPS = (tasks.INVOICES_TASK, tasks.PRODUCTS_TASK, tasks.COMPANIES_TASK, tasks.DEALS_TASK)
STEP_OVERRIDES: dict[str, dict[str, Any]] = {
    "validate_setup": {"retries": 0},  # a setup problem needs a person, not a retry
    tasks.PRODUCTS_TASK: {"trigger_rule": "none_failed_min_one_success"},
    # The report settles the run whatever happened upstream, and fails it when a step did.
    "report": {"trigger_rule": "all_done", "retries": 0},
}

Fetch = Callable[[], Sequence[IntegrationSummary]]


def dag_id_for(integration: IntegrationSummary | int) -> str:
    """`hubspot_sync__integration_<id>`: the integration's id only, so renaming its organization
    keeps the DAG and its history (README, "DAG ids" for ids of earlier versions). Takes the
    integration or its id."""
    integration_id = integration if isinstance(integration, int) else integration.id
    return f"{DAG_ID_PREFIX}integration_{integration_id}"


def cache_path() -> Path:
    return state_dir() / "integrations.json"


def _fetch_from_ledger() -> Sequence[IntegrationSummary]:
    from hubspot_ledger.hooks.ledger import LedgerHook

    return LedgerHook().integrations.list(timeout_seconds=LIST_TIMEOUT_SECONDS)


def _write_cache(path: Path, integrations: Sequence[IntegrationSummary]) -> None:
    payload = json.dumps([i.to_dict() for i in integrations], sort_keys=True, indent=1)
    if path.exists() and path.read_text() == payload:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(payload)
    tmp.replace(path)  # atomic: a concurrent parser never reads half a file


def _read_cache(path: Path) -> list[IntegrationSummary]:
    return [IntegrationSummary.from_dict(d) for d in json.loads(path.read_text())]


def load_integrations(fetch: Fetch = _fetch_from_ledger, cache: Path | None = None
                      ) -> list[IntegrationSummary]:
    """Integrations from the ledger, or the last known list when the ledger cannot be read."""
    cache = cache or cache_path()
    try:
        integrations = list(fetch())
    except Exception as exc:  # noqa: BLE001 - any ledger failure must fall back, never crash parsing
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if not cache.exists():
            log.error("Ledger unreachable (%s) and no cached list of integrations at %s: "
                      "no HubSpot DAGs this parse", reason, cache)
            return []
        cached = _read_cache(cache)
        read_at = dt.datetime.fromtimestamp(cache.stat().st_mtime, dt.UTC)
        stamp = read_at.isoformat(timespec="seconds")
        log.warning("Ledger unreachable (%s); serving the last known list of %d integration(s) "
                    "read at %s", reason, len(cached), stamp)
        return cached
    try:
        _write_cache(cache, integrations)
    except OSError as exc:
        log.warning("Could not cache the list of integrations at %s: %s", cache, exc)
    return integrations


def changes_asset(integration_id: int) -> Asset:
    """The asset of the integration's HubSpot changes: HubSpot's webhooks record events of it
    (api/routes_webhooks), and the DAG runs on it (webhooks/asset.py)."""
    return Asset(name=asset_name(integration_id), uri=asset_uri(integration_id),
                 group=ASSET_GROUP)


# One cron timetable per distinct schedule, shared by the DAGs on it: building one parses the
# cron and loads its description's locale (about a third of a DAG's build time; bench parse
# phase).
@functools.lru_cache(maxsize=256)
def _cron_timetable(schedule: str) -> Any:
    try:
        return SyncTimetable(schedule, timezone="UTC")
    except Exception:  # noqa: BLE001 - Airflow reports a bad schedule better than we can
        return None


def _timetable(schedule: str, integration_id: int) -> Any:
    """The integration's cron for scheduled runs, with real data intervals, and calendar-month
    windows for backfills (hubspot_ledger.timetable says why): each backfill run reads the
    records HubSpot last modified inside its window (see sync.tasks.backfill_window). And, beside
    the cron, the integration's changes asset: a HubSpot webhook event of its portal starts a
    run at once (issue 14; Airflow's AssetOrTimeSchedule keeps the cron's runs and data
    intervals, and backfills follow the cron timetable's windows). Anything that is not a cron
    expression or preset is given to Airflow as it is."""
    cron = _cron_timetable(schedule)
    if cron is None:
        return schedule
    # A plugin's timetable is Airflow's core kind, which AssetOrTimeSchedule serializes and
    # reads back like any other (the SDK's annotation names its own timetables only).
    return AssetOrTimeSchedule(timetable=cron, assets=changes_asset(integration_id))


# What an operator reads on the DAG's page. Static: anything that changes with the integration's
# status or settings (cutoff, toggles) would make every change a new DAG version.
DOC_MD = """Syncs one HubSpot portal into the ledger (DESIGN.md, "Data flow"): validate_setup →
refresh_token → (sync_invoices) → sync_products → sync_companies → sync_deals → report.

The integration's status, settings and cutoff live in the ledger (`hubspot-ledger settings show
--integration ID`, the integration endpoints). A run of an integration that is not connected or
not set up fails at `validate_setup`, saying what to do ("reconnect HubSpot", "Setup incomplete:
…"). Trigger with `full_refresh` to re-read everything since the cutoff date."""
# Airflow refuses longer tags; a display name this long is unreadable anyway.
_TAG_MAX, _DISPLAY_MAX = 100, 200


def _display_name(integration: IntegrationSummary) -> str:
    prefix, suffix = "HubSpot sync · ", f" (integration {integration.id})"
    name = integration.organization_name.strip() or "(unnamed organization)"
    return f"{prefix}{name[:_DISPLAY_MAX - len(prefix) - len(suffix)]}{suffix}"


def _tags(integration: IntegrationSummary) -> list[str]:
    organization = f"organization:{integration.organization_name.strip()}"[:_TAG_MAX]
    return ["hubspot", f"integration:{integration.id}", organization]


def _step(name: str, integration_id: int) -> PythonOperator:
    """The step `name`, calling its body in sync.tasks with the integration's id (Airflow
    hands the body its context as keyword arguments). Every step holds ledger connections, so
    every step runs in the deployment's ledger pool, weighed by how many."""
    sync_step = name in SYNC_STEPS
    options: dict[str, Any] = {
        "task_id": name,
        "op_kwargs": {"integration_id": integration_id},
        "pool": ledger_pool.POOL_NAME,
        "pool_slots": ledger_pool.task_slots(name, sync_step),
        **({"execution_timeout": step_timeout()} if sync_step else {}),
        **STEP_OVERRIDES.get(name, {}),
    }
    if name == BRANCH_TASK:
        return BranchPythonOperator(python_callable=tasks.choose_invoice_branch, **options)
    return PythonOperator(python_callable=getattr(tasks, name), **options)


def build_dag(integration: IntegrationSummary) -> DAG:
    """DESIGN.md's fixed order: validate → token → (invoices) → products → companies → deals.

    Everything serialized here depends on the integration's id, organization and schedule only:
    a change of status or settings is no new DAG version (issue 15). Every integration runs on
    its schedule whatever its status; one that is not connected or not set up fails its runs at
    validate_setup with the reason, so Airflow's failure notifications say so."""
    with DAG(
        dag_id=dag_id_for(integration),
        dag_display_name=_display_name(integration),
        description="HubSpot → ledger sync of one integration",
        schedule=_timetable(integration.schedule, integration.id),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dagrun_timeout(),
        default_args={**DEFAULT_ARGS, "execution_timeout": task_timeout()},
        params={"full_refresh": Param(False, type="boolean",
                                      description="Re-read everything since the cutoff date")},
        tags=_tags(integration),
        doc_md=DOC_MD,
    ) as dag:
        step = {name: _step(name, integration.id) for name in STEPS}
        branch = _step(BRANCH_TASK, integration.id)
        # The branch picks sync_invoices and sync_products, or sync_products alone (R-SYNC-3);
        # products then waits for invoices whenever they run, keeping the fixed order (R-SYNC-2).
        step["validate_setup"] >> step["refresh_token"] >> branch
        branch >> [step[tasks.INVOICES_TASK], step[tasks.PRODUCTS_TASK]]
        chain(step[tasks.INVOICES_TASK], step[tasks.PRODUCTS_TASK], step[tasks.COMPANIES_TASK],
              step[tasks.DEALS_TASK], step["report"])
    return dag


def shard_of(integration_id: int) -> int:
    return integration_id % SHARDS


def dag_file_for(integration_id: int) -> Path:
    """The DAG file that builds the integration's DAG."""
    from hubspot_ledger.config import PROJECT_ROOT

    return PROJECT_ROOT / "dags" / f"hubspot_sync_{shard_of(integration_id)}.py"


def _integration_of(dag_id: str) -> int | None:
    prefix = f"{DAG_ID_PREFIX}integration_"
    tail = dag_id[len(prefix):] if dag_id.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


def build_dags(fetch: Fetch = _fetch_from_ledger, shard: int | None = None) -> dict[str, DAG]:
    """The DAGs of the integrations in `shard` (all of them when None), keyed by dag id; only
    the requested one when a worker parses (and no ledger read at all when it is in another
    shard's file)."""
    wanted = get_parsing_context().dag_id
    if wanted is not None and shard is not None:
        wanted_integration = _integration_of(wanted)
        if wanted_integration is not None and shard_of(wanted_integration) != shard:
            return {}
    dags: dict[str, DAG] = {}
    for integration in load_integrations(fetch):
        dag_id = dag_id_for(integration)
        if (wanted is not None and wanted != dag_id) or (
                shard is not None and shard_of(integration.id) != shard):
            continue
        dags[dag_id] = build_dag(integration)
    return dags
