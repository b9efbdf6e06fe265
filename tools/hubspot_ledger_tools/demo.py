"""`make demo`: the whole story on sandbox data, as far as it is built.

Set-up (Airflow home, ledger migrations) → HubSpot sandbox → demo organization and integration →
connect through OAuth → run the integration's DAG → print what landed in the ledger.
Steps that are not built yet are announced as such, never faked.

The demo keeps to a ledger database of its own (`ledger_demo`, on the server of
`ledger_default`): the shared `ledger` of this server may hold another checkout's integrations,
whose tokens are encrypted under that checkout's key. Its DAG is left paused, so that a
scheduler started later (`make airflow`) does not run it at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse, urlsplit, urlunsplit

import requests

from hubspot_ledger.config import apply_airflow_env_defaults, prepare_airflow_home
from hubspot_ledger.display import display_safe, fit

DEMO_ORGANIZATION = "Demo Company"
DEMO_CUTOFF = dt.date(2024, 1, 1)
DEMO_APP = {"client_id": "demo-client-id", "client_secret": "demo-client-secret",
            "redirect_uri": "http://localhost:8080/hubspot/oauth-callback"}
DEMO_DATABASE = "ledger_demo"
# The demo organization's settings: setting → account code of the default chart
# (`hubspot-ledger books create`, data/books/default.csv), and its accounting company.
DEMO_ACCOUNTS = {
    "ar_account": "1100",
    "deferred_revenue_account": "2400",
    "expense_account": "5000",
    "income_account": "4000",
    "clearing_account": "1190",
}
DEMO_ENTITY = ("Demo Company Ltd", "USD")
LEDGER_TABLES = ("organizations", "integrations", "customers", "items", "contracts",
                 "performance_obligations", "invoices", "invoice_lines", "integration_records",
                 "integration_errors", "sync_runs")


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_sandbox() -> Iterator[str]:
    port = _free_port()
    cli = os.path.join(os.path.dirname(sys.executable), "hubspot-ledger")
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [cli, "sandbox", "--port", str(port), "--seed", "1", "--scale", "tiny",
         "--client-id", DEMO_APP["client_id"], "--client-secret", DEMO_APP["client_secret"],
         "--redirect-uri", DEMO_APP["redirect_uri"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def demo_integration_id() -> int:
    from hubspot_ledger.hooks.ledger import LedgerHook

    hook = LedgerHook()
    existing = [i for i in hook.integrations.list() if i.organization_name == DEMO_ORGANIZATION]
    if existing:
        return existing[0].id
    return hook.integrations.create(DEMO_ORGANIZATION, DEMO_CUTOFF)


def use_sandbox_app(url: str) -> None:
    """Point the hubspot_default connection at the sandbox (the deployment's HubSpot app)."""
    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps({
        "conn_type": "http", "host": url, "login": DEMO_APP["client_id"],
        "password": DEMO_APP["client_secret"],
        "extra": {"redirect_uri": DEMO_APP["redirect_uri"],
                  "authorize_url": f"{url}/oauth/authorize"}})


def set_up_books(integration_id: int) -> None:
    """The accounting product owns accounts and entities; the demo sets up the default chart
    as `hubspot-ledger books create` does, then the integration's settings."""
    from hubspot_ledger.books import create_books, template_chart
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.integration_settings import save_settings

    hook = LedgerHook()
    organization = hook.integrations.get(integration_id).organization_name
    with hook.new_connection() as conn:
        create_books(conn, organization, *DEMO_ENTITY, template_chart("default"))
    settings = save_settings(integration_id, accounts=dict(DEMO_ACCOUNTS),
                             company=DEMO_ENTITY[0], sync_invoices=True)
    print(f"    accounts {', '.join(DEMO_ACCOUNTS.values())}; "
          f"company {settings.company}; invoice sync on")


def demo_ledger_uri(configured: str) -> str:
    """`ledger_default` (a URI or Airflow's JSON form) pointed at the demo's own database."""
    if configured.lstrip().startswith("{"):
        connection = json.loads(configured)
        return json.dumps({**connection, "schema": DEMO_DATABASE})
    parts = urlsplit(configured)
    return urlunsplit(parts._replace(path=f"/{DEMO_DATABASE}"))


def pause_dag(dag_id: str) -> None:
    """Leave the demo's DAG paused: a scheduler started later must not run it at once."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id)
                        .values(is_paused=True))
    print(f"    DAG {dag_id} left paused (unpause it in the Airflow UI to let the scheduler run "
          "it)")


def connect_through_oauth(integration_id: int) -> None:
    """The real flow: consent URL → (the sandbox approves) → redirect with code → exchange."""
    from hubspot_ledger.connect import auth_url, complete_connection

    url = auth_url(integration_id)
    print(f"    consent URL: {url.split('?')[0]}?…")
    redirect = requests.get(url, allow_redirects=False, timeout=10)
    location = redirect.headers.get("Location", "")
    query = parse_qs(urlparse(location).query)
    if "code" not in query:
        raise RuntimeError(f"consent did not redirect with a code ({redirect.status_code})")
    integration = complete_connection(query["code"][0], query.get("state", [""])[0])
    # The portal's id and currency come from HubSpot: shown through display.py like the rest.
    print(f"    connected to portal {display_safe(str(integration.remote_id))} "
          f"(currency {display_safe(str(integration.currency))}); tokens stored encrypted")


def run_dag(integration_id: int) -> str:
    from airflow.dag_processing.dagbag import DagBag

    from hubspot_ledger.dag_factory import dag_file_for, dag_id_for

    bag = DagBag(dag_folder=str(dag_file_for(integration_id)))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[dag_id_for(integration_id)]
    say(f"Running DAG {dag.dag_id}")
    # A logical date of its own: with none, Airflow's dag.test() deletes the DAG's other runs
    # without one (triggered runs), as run_dag explains.
    now = dt.datetime.now(dt.UTC)
    run = dag.test(run_after=now, logical_date=now)
    for ti in sorted(run.get_task_instances(), key=lambda t: t.start_date or dt.datetime.max):
        print(f"    {ti.task_id:<26} {ti.state}")
    pause_dag(dag.dag_id)
    return str(run.state)


def print_ledger(integration_id: int) -> None:
    """What landed, as people read it: every value from HubSpot (names, messages) goes through
    display.py (no formula start, bidi override or control character), and a column too narrow
    for it shows the cut with "…"."""
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.sync.run_report import render

    hook = LedgerHook()
    say("What landed in the ledger (rows per table)")
    for table, count in hook.overview.table_counts(LEDGER_TABLES).items():
        print(f"    {table:<26} {count}")
    say("Draft contracts from closed-won deals (first 8)")
    for name, customer, total, currency, lines in hook.overview.contracts(integration_id, 8):
        print(f"    {fit(name, 34):<34} {fit(customer, 22):<22} {total:>12,.2f} "
              f"{display_safe(currency)} "
              f"({lines} obligation{'s' if lines != 1 else ''})")
    run = hook.runs.latest(integration_id)
    if run is not None:
        say("The run's report (the report task logs the same)")
        errors = hook.runs.count_errors(run["id"])
        report = render(run["id"], integration_id, run["status"] == "success", run["counts"],
                        errors, run["message"])
        print("\n".join(f"    {display_safe(line)}" for line in report.splitlines()))
        logged = [e for e in hook.errors.list(integration_id) if e.sync_run_id == run["id"]]
        if logged:
            say("Skipped or failed, and why (the errors log: hubspot-ledger errors)")
            for error in logged[:12]:
                print(f"    {display_safe(f'{error.remote_type} {error.remote_id}')}: "
                      f"{display_safe(error.message)}")


def main() -> int:
    apply_airflow_env_defaults()
    os.environ["AIRFLOW_CONN_LEDGER_DEFAULT"] = demo_ledger_uri(
        os.environ["AIRFLOW_CONN_LEDGER_DEFAULT"])
    logging.basicConfig(level=logging.WARNING)
    say("Preparing the Airflow home (embedded metadata DB)")
    print(f"    {prepare_airflow_home()}")

    from hubspot_ledger.hooks.ledger import LedgerHook

    say(f"Migrating the demo's ledger database ({DEMO_DATABASE})")
    applied = LedgerHook().migrate(create_database=True)
    print(f"    {'applied ' + ', '.join(applied) if applied else 'schema up to date'}")

    with running_sandbox() as url:
        say(f"HubSpot sandbox running at {url}")
        use_sandbox_app(url)
        integration_id = demo_integration_id()
        say(f"Organization '{DEMO_ORGANIZATION}', integration {integration_id}: settings")
        set_up_books(integration_id)
        say("Connecting HubSpot through OAuth (authorization-code flow against the sandbox)")
        connect_through_oauth(integration_id)
        state = run_dag(integration_id)
        say(f"DAG run finished: {state}")
        print_ledger(integration_id)
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
