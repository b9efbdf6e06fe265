"""The fault matrix: each fault injected into a real sync, then the ledger compared with a
fault-free run of the same portal. `make chaos` runs it at a larger scale and prints a table;
`tests/reliability` runs it on a small portal in `make test`.

Like `demo`, this is a tool around the product: it drives the HubSpot sandbox and the ledger.
A run retries a failed step as Airflow's task retries would (up to `RETRIES` times); whatever
could not be done must show (a failed run, an errors-log entry), never vanish.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger_tools.sandbox.testing import SandboxServer

STEPS = ("invoices", "products", "companies", "deals")
RETRIES = 3
RETRY_DELAY = 1.5  # seconds between tries of a step, as Airflow's retry_delay (tests use 1 s)
CUTOFF = dt.date(2024, 1, 1)


# -- what a sync wrote, by HubSpot ids and values (ledger ids and timestamps aside) ---------------

_MAPPED = ("FROM ledger.integration_records r JOIN ledger.{t} x ON x.id = r.local_id "
           "AND r.local_table = '{t}' WHERE r.integration_id = %(i)s")
CANONICAL = {
    "items": "SELECT r.remote_id, x.sku, x.name, x.item_type " + _MAPPED.format(t="items"),
    "customers": "SELECT r.remote_id, x.name, x.phone, x.city " + _MAPPED.format(t="customers"),
    "contracts": ("SELECT r.remote_id, x.name, x.memo, x.contract_date, x.total_amount, "
                  "x.status, (SELECT name FROM ledger.customers c WHERE c.id = x.customer_id) "
                  + _MAPPED.format(t="contracts")),
    "obligations": ("SELECT r.remote_id, x.quantity, x.unit_price, x.amount "
                    + _MAPPED.format(t="performance_obligations")),
    "invoices": ("SELECT r.remote_id, x.number, x.invoice_date, x.due_date, x.total_amount "
                 + _MAPPED.format(t="invoices")),
    "invoice_lines": ("SELECT r.remote_id, x.quantity, x.unit_price, x.amount "
                      + _MAPPED.format(t="invoice_lines")),
    "errors": ("SELECT DISTINCT remote_type, remote_id, message FROM ledger.integration_errors "
               "WHERE integration_id = %(i)s AND remote_id IS NOT NULL"),
}
# Rows of the organization that no HubSpot record points at: a document or line written twice
# leaves one of its copies here.
_ORPHANS = " + ".join(
    f"(SELECT count(*) FROM ledger.{table} x WHERE x.organization_id = i.organization_id "
    f"AND NOT EXISTS (SELECT 1 FROM ledger.integration_records r WHERE r.integration_id = i.id "
    f"AND r.local_table = '{table}' AND r.local_id = x.id){extra})"
    for table, extra in (("contracts", ""), ("performance_obligations", ""), ("invoices", ""),
                         ("invoice_lines", ""), ("items", ""),
                         ("customers", " AND NOT x.is_placeholder")))
_DUPLICATES = f"SELECT {_ORPHANS} FROM ledger.integrations i WHERE i.id = %(i)s"


Dump = dict[str, list[tuple[str, ...]]]


def canonical(conn: psycopg.Connection[Any], integration_id: int) -> Dump:
    return {name: sorted(tuple(map(str, row)) for row in conn.execute(
        query, {"i": integration_id}).fetchall()) for name, query in CANONICAL.items()}


def duplicates(conn: psycopg.Connection[Any], integration_id: int) -> int:
    row = conn.execute(_DUPLICATES, {"i": integration_id}).fetchone()
    return int(row[0]) if row else 0


# -- running a sync the way Airflow would -------------------------------------------------------


def sync(integration_id: int, retries: int = RETRIES, run: str | None = None
         ) -> tuple[bool, list[str]]:
    """All steps of one DAG run in order, each retried like an Airflow task; then the report
    settles the run. Returns (succeeded, the failures seen on the way)."""
    from hubspot_ledger.sync.run_report import settle_run
    from hubspot_ledger.sync.runner import run_step

    run = run or f"chaos-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    for step in STEPS:
        for attempt in range(1, retries + 2):
            try:
                run_step(step, integration_id, run)
                break
            except Exception as exc:  # noqa: BLE001 - a task failure, retried like Airflow's
                seen.append(f"{step} try {attempt}: {type(exc).__name__}: {exc}"[:300])
                if attempt == retries + 1:
                    settle_run(integration_id, run)
                    return False, seen
                time.sleep(RETRY_DELAY)
    ok, _ = settle_run(integration_id, run)
    return ok, seen


def _child_sync(integration_id: int, run: str) -> None:  # pragma: no cover - gets killed
    sync(integration_id, retries=0, run=run)


# -- the faults ---------------------------------------------------------------------------------


@dataclass
class Env:
    sandbox: SandboxServer
    conn: psycopg.Connection[Any]
    integration_id: int
    database: str


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    run: Callable[[Env], tuple[bool, list[str]]]


def _with_rules(*rules: dict[str, Any]) -> Callable[[Env], tuple[bool, list[str]]]:
    def run(env: Env) -> tuple[bool, list[str]]:
        first = env.sandbox.last_seq()
        env.sandbox.set_faults(list(rules))
        try:
            ok, seen = sync(env.integration_id)
        finally:
            env.sandbox.clear_faults()
        fired = sum(1 for r in env.sandbox.requests(since=first) if r.get("fault"))
        if not fired:
            return False, [*seen, "the fault never fired"]
        return ok, [*seen, f"{fired} requests faulted"]
    return run


def _timeouts(env: Env) -> tuple[bool, list[str]]:
    """Calls that get no answer within the read time-out: abandoned and retried."""
    before = os.environ.get("HUBSPOT_LEDGER_READ_TIMEOUT")
    os.environ["HUBSPOT_LEDGER_READ_TIMEOUT"] = "1"
    try:
        return _with_rules({"action": "delay", "delay": 2.5, "endpoint": "POST */batch/read",
                            "first": 2})(env)
    finally:
        if before is None:
            os.environ.pop("HUBSPOT_LEDGER_READ_TIMEOUT", None)
        else:
            os.environ["HUBSPOT_LEDGER_READ_TIMEOUT"] = before


def _revoked(env: Env) -> tuple[bool, list[str]]:
    """The customer revokes access: the run fails clearly; after reconnecting it completes."""
    env.sandbox.revoke_refresh_tokens(access_tokens=True)
    ok, seen = sync(env.integration_id, retries=0)
    status = env.conn.execute("SELECT status, status_message FROM ledger.integrations "
                              "WHERE id = %s", [env.integration_id]).fetchone()
    if ok or status is None or status[0] != "error" or "reconnect HubSpot" not in status[1]:
        return False, [*seen, f"a revoked token did not stop the run clearly: {status}"]
    connect(env.sandbox, env.integration_id)
    ok, more = sync(env.integration_id)
    return ok, [*seen, *more]


def _ledger_restart(env: Env) -> tuple[bool, list[str]]:
    """Every ledger connection dropped, repeatedly, while the deals step writes."""
    stop = threading.Event()

    def kill_connections() -> None:
        with psycopg.connect(_admin_uri(), autocommit=True) as admin:
            while not stop.is_set():
                staged = env.conn.execute(
                    "SELECT count(*) FROM ledger.sync_runs WHERE integration_id = %s AND "
                    "counts ? 'companies' AND status = 'running'",
                    [env.integration_id]).fetchone()
                if staged and staged[0]:
                    for _ in range(5):
                        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = %s AND pid <> pg_backend_pid() AND "
                                      "application_name <> 'chaos-observer'", [env.database])
                        time.sleep(0.2)
                    return
                time.sleep(0.05)

    killer = threading.Thread(target=kill_connections, daemon=True)
    # A small portal's deals step takes about 0.1 s, less than the killer may need to see it
    # start: slowed reads keep it writing while the connections drop.
    env.sandbox.set_faults([{"action": "delay", "delay": 0.15}])
    killer.start()
    try:
        ok, seen = sync(env.integration_id)
    finally:
        stop.set()
        killer.join(timeout=10)
        env.sandbox.clear_faults()
    if not seen:
        return False, ["the ledger connections were never dropped"]
    return ok, seen


def _sigkill(step: str) -> Callable[[Env], tuple[bool, list[str]]]:
    def run(env: Env) -> tuple[bool, list[str]]:
        """The task process killed (SIGKILL) inside `step`, then the run retried."""
        env.sandbox.set_faults([{"action": "delay", "delay": 0.15}])  # room to strike
        run = f"chaos-{uuid.uuid4().hex[:8]}"
        child = multiprocessing.get_context("spawn").Process(
            target=_child_sync, args=(env.integration_id, run))
        child.start()
        killed = _kill_inside(env, child, step)
        env.sandbox.clear_faults()
        if not killed:
            return False, [f"the sync finished before it could be killed in {step}"]
        ok, seen = sync(env.integration_id, run=run)  # Airflow retries within the same run
        return ok, [f"killed in {step}", *seen]
    return run


def _kill_inside(env: Env, child: Any, step: str, timeout: float = 120) -> bool:
    """SIGKILL the child in the middle of `step`: once the step before it has finished (its
    counts are in the run's row), while this one reads and writes (slowed by a delay fault)."""
    deadline = time.monotonic() + timeout
    before = {"invoices": None, "products": "invoices", "companies": "products",
              "deals": "companies"}[step]
    while time.monotonic() < deadline and child.is_alive():
        run = env.conn.execute(
            "SELECT counts FROM ledger.sync_runs WHERE integration_id = %s "
            "ORDER BY id DESC LIMIT 1", [env.integration_id]).fetchone()
        if run is not None and (before is None or before in run[0]) and step not in run[0]:
            time.sleep(0.1)
            os.kill(child.pid, signal.SIGKILL)
            child.join(timeout=30)
            return True
        time.sleep(0.02)
    child.join(timeout=timeout)
    return False


FAULTS = [
    Fault("429 bursts", "HubSpot answers 429 to the first calls of every kind",
          _with_rules({"action": "status", "status": 429, "endpoint": "POST */search",
                       "first": 2},
                      {"action": "status", "status": 429, "endpoint": "POST */batch/read",
                       "first": 2})),
    Fault("5xx", "HubSpot answers 502 and 503 now and then",
          _with_rules({"action": "status", "status": 503, "endpoint": "POST */batch/read",
                       "nth": 2},
                      {"action": "status", "status": 502, "endpoint": "POST */search",
                       "nth": 3})),
    Fault("slow responses", "every search and batch read answers 0.3 s late",
          _with_rules({"action": "delay", "delay": 0.3, "endpoint": "POST *"})),
    Fault("time-outs", "calls get no answer within the read time-out", _timeouts),
    Fault("connection resets", "the connection drops without an answer now and then",
          _with_rules({"action": "reset", "endpoint": "POST */batch/read", "nth": 2},
                      {"action": "reset", "path": "/crm/v3/objects/products", "nth": 1})),
    Fault("token expiry mid-run", "the access token expires in the middle of the run",
          _with_rules({"action": "expire_token", "endpoint": "POST */batch/read", "nth": 3})),
    Fault("revoked refresh token", "the customer revokes access; the operator reconnects",
          _revoked),
    Fault("ledger restart", "every ledger connection dropped while deals are written",
          _ledger_restart),
    *(Fault(f"SIGKILL in {step}", f"the task process killed while {step} are written",
            _sigkill(step)) for step in STEPS),
]


# -- set-up shared with the tests -------------------------------------------------------------


def _admin_uri() -> str:
    uri = os.environ.get("AIRFLOW_CONN_LEDGER_DEFAULT", "postgresql://postgres@127.0.0.1:5432/x")
    return uri.rsplit("/", 1)[0] + "/postgres"


def connect(sb: SandboxServer, integration_id: int) -> None:
    """The real consent redirect and code exchange."""
    from urllib.parse import parse_qs, urlparse

    import requests

    from hubspot_ledger.connect import auth_url, complete_connection

    consent = requests.get(auth_url(integration_id), allow_redirects=False, timeout=10)
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    complete_connection(query["code"][0], query["state"][0])


def new_integration(sb: SandboxServer, organization: str) -> int:
    """An organization with its books and settings, connected to the sandbox's portal."""
    from hubspot_ledger.integration_settings import save_settings
    from hubspot_ledger.load.records import AccountType

    hook = LedgerHook()
    integration_id = hook.integrations.create(organization, CUTOFF)
    org = hook.integrations.get(integration_id).organization_id
    accounts = {"ar_account": ("1100", AccountType.ASSET),
                "deferred_revenue_account": ("2400", AccountType.LIABILITY),
                "expense_account": ("5000", AccountType.EXPENSE),
                "income_account": ("4000", AccountType.INCOME),
                "clearing_account": ("1190", AccountType.ASSET)}
    for code, kind in accounts.values():
        hook.settings.create_account(org, code, f"Account {code}", kind)
    hook.settings.create_company(org, "Books Ltd", "USD")
    save_settings(integration_id, accounts={k: v[0] for k, v in accounts.items()},
                  company="Books Ltd", sync_invoices=True)
    connect(sb, integration_id)
    return integration_id


@contextmanager
def sandbox_app(sb: SandboxServer) -> Iterator[None]:
    """Point `hubspot_default` at the sandbox for the duration."""
    import json

    before = os.environ.get("AIRFLOW_CONN_HUBSPOT_DEFAULT")
    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps({
        "conn_type": "http", "host": sb.url, "login": sb.client_id,
        "password": sb.client_secret,
        "extra": {"redirect_uri": sb.redirect_uri,
                  "authorize_url": f"{sb.url}/oauth/authorize"}})
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("AIRFLOW_CONN_HUBSPOT_DEFAULT", None)
        else:
            os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = before


@dataclass
class Result:
    fault: str
    succeeded: bool
    expected: int
    in_ledger: int
    duplicates: int
    lost: int
    different: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return self.succeeded and not self.duplicates and not self.lost and not self.different


def run_fault(fault: Fault, sb: SandboxServer, conn: psycopg.Connection[Any],
              reference: Dump, database: str) -> Result:
    integration_id = new_integration(sb, f"Chaos {fault.name} {uuid.uuid4().hex[:6]}")
    ok, notes = fault.run(Env(sb, conn, integration_id, database))
    got = canonical(conn, integration_id)
    expected = sum(len(v) for k, v in reference.items() if k != "errors")
    present = sum(len(set(got[k]) & set(v)) for k, v in reference.items() if k != "errors")
    return Result(fault=fault.name, succeeded=ok, expected=expected,
                  in_ledger=sum(len(v) for k, v in got.items() if k != "errors"),
                  duplicates=duplicates(conn, integration_id), lost=expected - present,
                  different=[k for k in reference if got[k] != reference[k]], notes=notes)


# -- make chaos -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--scale", default="small", help="sandbox scale (tiny … large)")
    parser.add_argument("--runs", type=int, default=1, help="times each fault is run")
    args = parser.parse_args(argv)

    from cryptography.fernet import Fernet

    from hubspot_ledger.config import apply_airflow_env_defaults
    from hubspot_ledger.crypto import KEYS_ENV

    apply_airflow_env_defaults()
    os.environ.setdefault(KEYS_ENV, Fernet.generate_key().decode())
    database = f"ledger_chaos_{os.getpid()}"
    os.environ["AIRFLOW_CONN_LEDGER_DEFAULT"] = _admin_uri().rsplit("/", 1)[0] + f"/{database}"
    LedgerHook().migrate(create_database=True)
    results: list[Result] = []
    try:
        with SandboxServer(seed=11, scale=args.scale, mode="process") as sb, sandbox_app(sb), \
                psycopg.connect(os.environ["AIRFLOW_CONN_LEDGER_DEFAULT"], autocommit=True,
                                application_name="chaos-observer") as conn:
            reference_id = new_integration(sb, "Chaos reference")
            ok, _ = sync(reference_id)
            if not ok:
                print("the fault-free reference run failed", file=sys.stderr)
                return 1
            reference = canonical(conn, reference_id)
            for fault in FAULTS:
                for _ in range(args.runs):
                    result = run_fault(fault, sb, conn, reference, database)
                    results.append(result)
                    print(f"  {fault.name:<22} {'ok' if result.ok else 'FAILED'}", flush=True)
    finally:
        with psycopg.connect(_admin_uri(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(f"\n{'fault':<22} {'runs':>5} {'expected':>9} {'in ledger':>10} {'duplicates':>11} "
          f"{'lost':>5}  result")
    for name in dict.fromkeys(r.fault for r in results):
        group = [r for r in results if r.fault == name]
        bad = [r for r in group if not r.ok]
        verdict = "ok" if not bad else "FAILED: " + "; ".join(bad[0].notes[-2:] + bad[0].different)
        print(f"{name:<22} {len(group):>5} {group[0].expected:>9,} "
              f"{min(r.in_ledger for r in group):>10,} {sum(r.duplicates for r in group):>11} "
              f"{sum(r.lost for r in group):>5}  {verdict}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
