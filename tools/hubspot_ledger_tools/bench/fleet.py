"""The fleet phase (issue 12, item 5): N integrations, each with a HubSpot portal and budget of
its own, synced at once through a real Airflow deployment (LocalExecutor, PostgreSQL metadata
database; tools/hubspot_ledger_tools/deployment.py).

    python -m hubspot_ledger_tools.bench --phases fleet --fleet-integrations 20

What it measures, from observable state only:
- total wall time, from the unpause (one request) to the last DAG run's end, and each DAG run's
  wall (the metadata database's start and end) against its own portal's rate-limit floor (the
  bench's floor: `census.full_read` → `minimal.plan` → `minimal.floor`);
- HubSpot's answers (the sandbox's request log): requests and 429s, per portal;
- ledger connections at peak (pg_stat_activity of the ledger database, sampled every 0.25 s),
  with the task instances running at that moment;
- worker CPU-seconds: of the whole fleet's first runs, and of one integration's run with
  nothing changed (the task-running processes' tree, psutil: the LocalExecutor workers the
  scheduler forks and the task processes they supervise, exited ones included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections import Counter
from typing import Any

from hubspot_ledger import ledger_pool
from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger_tools.bench import census, minimal
from hubspot_ledger_tools.bench.environment import REQUEST_LOG_SIZE, bench_ledger
from hubspot_ledger_tools.deployment import (
    ConnectionSampler,
    DagRun,
    Deployment,
    DeploymentSettings,
    TaskRun,
    poll,
)
from hubspot_ledger_tools.fleet_portals import add_portals, connected_integration, dag_id
from hubspot_ledger_tools.sandbox.testing import SandboxServer

FIRST_PORTAL = 80_001
# The most ledger connections one task holds (the deals step: ledger_pool's slots of a task).
CONNECTIONS_PER_TASK = ledger_pool.DEALS_STEP_SLOTS
SYNC_TASKS = ("sync_invoices", "sync_products", "sync_companies", "sync_deals")
DEPLOYMENT_ENV = ("AIRFLOW_CONN_LEDGER_DEFAULT", "AIRFLOW_CONN_HUBSPOT_DEFAULT", KEYS_ENV,
                  "HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS")
# The sandbox's latency model (issue 12, item 1) is another piece of work: when the sandbox
# has the switch and the bench a `--latency` option, the fleet passes it through; until then
# the fleet runs at the sandbox's own speed and the report says so.
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet-integrations", type=int, default=20,
                        help="fleet phase: integrations synced at once, each its own portal")
    parser.add_argument("--fleet-scale", default="medium",
                        help="fleet phase: each portal's sandbox scale")
    parser.add_argument("--fleet-parallelism", type=int, default=0,
                        help="fleet phase: the scheduler's task slots (0: one per integration)")
    parser.add_argument("--fleet-database", default="ledger_fleet",
                        help="fleet phase: its own ledger database (dropped at the end)")


def latency_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The bench's latency switch (`--latency`, on by default), for each portal's sandbox."""
    return {"latency": bool(getattr(args, "latency", True))}


def latency_note(args: argparse.Namespace) -> str:
    on = latency_settings(args)["latency"]
    return "the sandbox's latency model" if on else "off (--no-latency)"


def say(message: str) -> None:
    print(f"    {message}", flush=True)


def _floor(sb: SandboxServer, portal_id: int, cutoff: dt.date) -> minimal.Floor:
    reads = census.full_read(sb, cutoff, sync_invoices=True, portal_id=portal_id)
    plan = minimal.by_endpoint(minimal.plan(reads))
    return minimal.floor({e: n for e, (n, _) in plan.items()})


def _sync_wall(tasks: list[TaskRun]) -> float | None:
    """From the first sync step's start to the last one's end (the steps that read HubSpot)."""
    steps = [t for t in tasks if t.task_id in SYNC_TASKS and t.start and t.end]
    if not steps:
        return None
    return (max(t.end for t in steps if t.end) - min(t.start for t in steps if t.start)
            ).total_seconds()


def _portal_rows(runs: dict[str, DagRun], tasks: list[TaskRun], portals: dict[str, int],
                 floors: dict[int, minimal.Floor], requests: list[dict[str, Any]],
                 unpaused: dt.datetime) -> list[dict[str, Any]]:
    by_portal = Counter(int(r["portal_id"]) for r in requests if r.get("portal_id"))
    throttled = Counter(int(r["portal_id"]) for r in requests
                        if r.get("portal_id") and r["status"] == 429)
    rows = []
    for dag, run in sorted(runs.items(), key=lambda kv: portals[kv[0]]):
        portal = portals[dag]
        floor = floors[portal].seconds
        mine = [t for t in tasks if t.dag_id == dag and t.run_id == run.run_id]
        wall = run.wall_s
        rows.append({
            "portal_id": portal, "dag_id": dag, "run_id": run.run_id, "state": run.state,
            "started_after_s": (run.start - unpaused).total_seconds() if run.start else None,
            "run_wall_s": wall, "sync_wall_s": _sync_wall(mine), "floor_s": floor,
            "floor_ratio": wall / floor if wall and floor else None,
            "requests": by_portal.get(portal, 0), "throttled": throttled.get(portal, 0),
            "tasks": len(mine)})
    return rows


def _wait_idle(airflow: Deployment, dags: list[str]) -> None:
    """No run of the fleet's DAGs running (paused DAGs start no new ones)."""
    poll("the fleet's runs to settle", lambda: all(
        r.state != "running" for r in airflow.dag_runs(dags)), 900, interval=1.0,
        alive=airflow.check_alive)


def _nochange(airflow: Deployment, sb: SandboxServer, dag: str) -> dict[str, Any]:
    """One integration's run with nothing changed, alone on the workers: its CPU-seconds."""
    first = sb.last_seq()
    before = airflow.worker_cpu_seconds()
    run_id = airflow.trigger(dag)
    airflow.set_paused(False, dag)
    run = airflow.wait_for_runs([dag], 600, run_ids={dag: run_id})[dag]
    cpu = airflow.worker_cpu_seconds() - before
    airflow.set_paused(True, dag)
    tasks = [t for t in airflow.task_runs([dag]) if t.run_id == run_id]
    requests = sb.requests(since=first)
    return {"dag_id": dag, "run_id": run_id, "state": run.state, "run_wall_s": run.wall_s,
            "worker_cpu_s": cpu, "tasks": len(tasks),
            "cpu_per_task_s": cpu / len(tasks) if tasks else None,
            "requests": len(requests),
            "throttled": sum(1 for r in requests if r["status"] == 429)}


def _deployment_env() -> dict[str, str]:
    return {k: os.environ[k] for k in DEPLOYMENT_ENV if k in os.environ}


def _sync_fleet(airflow: Deployment, sb: SandboxServer, uri: str, database: str,
                dags: list[str]) -> dict[str, Any]:
    """Unpause every DAG in one request (their scheduled runs start together) and wait for
    each one's run to end, sampling the ledger's sessions meanwhile."""
    first = sb.last_seq()
    cpu_before = airflow.worker_cpu_seconds()
    sampler = ConnectionSampler(uri, database, running=airflow.running_tasks)
    with sampler:
        unpaused = dt.datetime.now(dt.UTC)
        start = time.monotonic()
        airflow.set_paused(False)
        runs = airflow.wait_for_runs(dags, timeout=3600)
        wall = time.monotonic() - start
    airflow.set_paused(True)
    cpu = airflow.worker_cpu_seconds() - cpu_before
    return {"runs": runs, "wall_s": wall, "unpaused": unpaused, "sampler": sampler,
            "worker_cpu_s": cpu, "requests": sb.requests(since=first)}


def _report(args: argparse.Namespace, count: int, parallelism: int,
            fleet: dict[str, Any], rows: list[dict[str, Any]],
            nochange: dict[str, Any], max_connections: int) -> dict[str, Any]:
    requests, sampler = fleet["requests"], fleet["sampler"]
    statuses = Counter(str(r["status"]) for r in requests)
    ratios = [r["floor_ratio"] for r in rows if r["floor_ratio"] is not None]
    # The deployment's `hubspot_ledger` pool: what bounds the tasks' ledger connections.
    pool = ledger_pool.pool_slots()
    return {
        "integrations": count, "scale": args.fleet_scale, "executor": "LocalExecutor",
        "parallelism": parallelism, "cutoff": args.cutoff.isoformat(),
        "latency": latency_note(args),
        "wall_s": fleet["wall_s"],
        "runs_succeeded": sum(1 for r in rows if r["state"] == "success"),
        "requests": len(requests), "throttled": statuses.get("429", 0),
        "failed": sum(n for s, n in statuses.items() if s == "None" or s.startswith("5")),
        "floor_ratio": {"max": max(ratios, default=None),
                        "median": statistics.median(ratios) if ratios else None},
        "ledger_connections": {"peak": sampler.peak, "running_tasks_at_peak":
                               sampler.running_at_peak, "samples": sampler.samples,
                               "pool": pool, "connections_per_task": CONNECTIONS_PER_TASK,
                               "server_max_connections": max_connections},
        "worker_cpu_s": {"fleet": fleet["worker_cpu_s"],
                         "per_full_run": fleet["worker_cpu_s"] / count if count else None,
                         "nochange_run": nochange["worker_cpu_s"]},
        "nochange": nochange, "portals": rows}


def _max_connections(uri: str) -> int:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('max_connections')::int - "
                           "current_setting('superuser_reserved_connections')::int").fetchone()
    return int(row[0]) if row else 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The whole phase: its own ledger database, sandbox and Airflow deployment."""
    from hubspot_ledger_tools import demo
    from hubspot_ledger_tools.bench.environment import database_uri

    count = args.fleet_integrations
    parallelism = args.fleet_parallelism or count
    with bench_ledger(args.fleet_database, args.keep_database) as uri, SandboxServer(
            seed=args.seed, scale="tiny", mode="thread", startup_timeout=600,
            client_id=demo.DEMO_APP["client_id"], client_secret=demo.DEMO_APP["client_secret"],
            redirect_uri=demo.DEMO_APP["redirect_uri"],
            request_log_size=REQUEST_LOG_SIZE, **latency_settings(args)) as sb:
        demo.use_sandbox_app(sb.url)
        portal_ids = add_portals(sb, count, args.fleet_scale, FIRST_PORTAL, args.seed)
        say(f"{count} portals at --scale {args.fleet_scale} in the sandbox ({sb.url})")
        integrations = {connected_integration(f"Fleet {n + 1:03d}", p, args.cutoff): p
                        for n, p in enumerate(portal_ids)}
        portals = {dag_id(i): p for i, p in integrations.items()}
        dags = sorted(portals)
        floors = {p: _floor(sb, p, args.cutoff) for p in portal_ids}
        say(f"{count} organizations connected; starting Airflow (LocalExecutor, "
            f"parallelism {parallelism}, PostgreSQL metadata database)")
        settings = DeploymentSettings(executor="LocalExecutor", parallelism=parallelism,
                                      name="fleet")
        with Deployment(settings, env=_deployment_env()) as airflow:
            airflow.wait_for_dags(dags)
            say(f"{len(dags)} DAGs parsed; unpausing them all in one request")
            fleet = _sync_fleet(airflow, sb, uri, args.fleet_database, dags)
            _wait_idle(airflow, dags)
            tasks = airflow.task_runs(dags)
            rows = _portal_rows(fleet["runs"], tasks, portals, floors, fleet["requests"],
                                fleet["unpaused"])
            say(f"fleet synced in {fleet['wall_s']:,.1f} s; one integration's run with "
                "nothing changed, alone")
            nochange = _nochange(airflow, sb, dags[0])
        return _report(args, count, parallelism, fleet, rows, nochange,
                       _max_connections(database_uri("postgres", uri)))
