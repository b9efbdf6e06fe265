"""The DAG factory: one DAG per integration, fixed task order, survives a ledger outage (issue #2).

DAGs are parsed by a real `DagBag` from the project's `dags/` folder against the real ledger.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.dag_processing.dagbag import DagBag

from hubspot_ledger import dag_factory
from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import save_settings
from hubspot_ledger.load.records import IntegrationStatus, IntegrationSummary

DAGS_FOLDER = PROJECT_ROOT / "dags"
DOWN_LEDGER = "postgresql://postgres@127.0.0.1:1/ledger"
FIXED_ORDER = ["validate_setup", "refresh_token", "branch_on_sync_invoices", "sync_invoices",
               "sync_products", "sync_companies", "sync_deals", "report"]


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test starts with no cached list of integrations."""
    monkeypatch.setenv("HUBSPOT_LEDGER_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"


def parse() -> DagBag:
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return bag


def hubspot_dags(bag: DagBag) -> dict:
    return {k: v for k, v in bag.dags.items() if k.startswith(dag_factory.DAG_ID_PREFIX)}


def summary(i: int, status: str = "connected") -> IntegrationSummary:
    return IntegrationSummary(id=i, organization_id=i, organization_name=f"Org {i}",
                              status=status, schedule="@hourly",
                              cutoff_date=dt.date(2025, 1, 1))


# -- unit: the last-known-list fallback -----------------------------------------------------

@pytest.mark.unit
def test_ledger_outage_serves_the_last_known_list_and_says_so(
        own_state_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    known = [summary(1), summary(2)]
    assert dag_factory.load_integrations(lambda: known) == known

    def down() -> list[IntegrationSummary]:
        raise psycopg.OperationalError("connection refused")

    with caplog.at_level(logging.WARNING, logger="hubspot_ledger.dag_factory"):
        assert dag_factory.load_integrations(down) == known
    assert "Ledger unreachable" in caplog.text
    assert "serving the last known list of 2 integration(s)" in caplog.text


@pytest.mark.unit
def test_ledger_outage_with_no_cache_builds_no_dags_and_logs_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    def down() -> list[IntegrationSummary]:
        raise TimeoutError("timed out")

    with caplog.at_level(logging.ERROR, logger="hubspot_ledger.dag_factory"):
        assert dag_factory.load_integrations(down) == []
    assert "no cached list" in caplog.text


@pytest.mark.unit
def test_the_cache_follows_the_ledger() -> None:
    dag_factory.load_integrations(lambda: [summary(1), summary(2)])
    dag_factory.load_integrations(lambda: [summary(2)])  # integration 1 was deleted

    def down() -> list[IntegrationSummary]:
        raise OSError("down")

    assert dag_factory.load_integrations(down) == [summary(2)]


@pytest.mark.unit
def test_dag_ids_depend_on_the_integration_only_and_the_organization_shows_in_the_ui() -> None:
    a = summary(7)
    renamed = IntegrationSummary(**{**a.to_dict(), "organization_name": "Ünïcode & Co. Ltd"})
    assert dag_factory.dag_id_for(a) == dag_factory.dag_id_for(renamed) == \
        dag_factory.dag_id_for(7) == "hubspot_sync__integration_7"
    assert dag_factory.dag_id_for(summary(8)) == "hubspot_sync__integration_8"
    dag = dag_factory.build_dag(renamed)
    assert dag.dag_display_name == "HubSpot sync · Ünïcode & Co. Ltd (integration 7)"
    assert set(dag.tags) == {"hubspot", "integration:7", "organization:Ünïcode & Co. Ltd"}


@pytest.mark.unit
def test_a_very_long_organization_name_still_builds_its_dag() -> None:
    long = IntegrationSummary(**{**summary(7).to_dict(), "organization_name": "Acme " * 200})
    dag = dag_factory.build_dag(long)
    assert dag.dag_display_name.endswith(" (integration 7)")
    assert len(dag.dag_display_name) <= 200
    assert all(len(tag) <= 100 for tag in dag.tags)


@pytest.mark.unit
@pytest.mark.parametrize("status", ["connected", "disconnected", "error"])
def test_issue_15_every_integration_keeps_its_schedule_whatever_its_status(status: str) -> None:
    timetable = dag_factory.build_dag(summary(1, status=status)).timetable
    # Hourly, with real data intervals; backfills by calendar month (hubspot_ledger.timetable).
    assert (type(timetable).__name__, timetable.summary) == ("SyncTimetable", "0 * * * *")


@pytest.mark.unit
def test_the_steps_are_python_operators_with_their_retries_and_trigger_rules() -> None:
    """Operators, not TaskFlow: cheaper to build at parse time (dag_factory's docstring)."""
    dag = dag_factory.build_dag(summary(1))
    kinds = {t.task_id: type(t).__name__ for t in dag.tasks}
    assert kinds.pop("branch_on_sync_invoices") == "BranchPythonOperator"
    assert set(kinds.values()) == {"PythonOperator"}
    rules = {t.task_id: (t.trigger_rule.value, t.retries) for t in dag.tasks}
    assert rules == {
        "validate_setup": ("all_success", 0), "refresh_token": ("all_success", 2),
        "branch_on_sync_invoices": ("all_success", 2), "sync_invoices": ("all_success", 2),
        "sync_products": ("none_failed_min_one_success", 2),
        "sync_companies": ("all_success", 2), "sync_deals": ("all_success", 2),
        "report": ("all_done", 0)}


# -- integration: real DagBag over dags/ against the real ledger ----------------------------

@pytest.mark.integration
def test_no_integration_no_dag(ledger: psycopg.Connection) -> None:
    assert hubspot_dags(parse()) == {}


@pytest.mark.integration
def test_one_integration_one_dag_in_the_fixed_order(ledger: psycopg.Connection) -> None:
    integration_id = LedgerHook().integrations.create("Acme Corp", dt.date(2025, 1, 1))
    dags = hubspot_dags(parse())
    assert list(dags) == [f"hubspot_sync__integration_{integration_id}"]
    dag = next(iter(dags.values()))
    assert sorted(dag.task_ids) == sorted(FIXED_ORDER)
    # The fixed order of DESIGN.md: each step waits for the previous one.
    chain = ["validate_setup", "refresh_token", "branch_on_sync_invoices", "sync_products",
             "sync_companies", "sync_deals", "report"]
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        assert downstream in dag.task_dict[upstream].downstream_task_ids, (upstream, downstream)
    assert dag.task_dict["sync_invoices"].upstream_task_ids == {"branch_on_sync_invoices"}
    assert "sync_products" in dag.task_dict["sync_invoices"].downstream_task_ids
    assert dag.max_active_runs == 1
    assert dag.params["full_refresh"] is False


@pytest.mark.integration
def test_five_hundred_integrations_parse(ledger: psycopg.Connection) -> None:
    hook = LedgerHook()
    ids = [hook.integrations.create(f"Org {n % 250}", dt.date(2025, 1, 1)) for n in range(500)]
    dags = hubspot_dags(parse())
    assert len(dags) == 500
    assert {int(d.rsplit("_", 1)[1]) for d in dags} == set(ids)


@pytest.mark.integration
def test_ledger_down_keeps_the_dags(ledger: psycopg.Connection, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    LedgerHook().integrations.create("Acme Corp", dt.date(2025, 1, 1))
    before = set(hubspot_dags(parse()))

    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_DEFAULT", DOWN_LEDGER)
    with caplog.at_level(logging.WARNING, logger="hubspot_ledger.dag_factory"):
        after = set(hubspot_dags(parse()))
    assert after == before and len(after) == 1
    assert "serving the last known list of 1 integration(s)" in caplog.text


@pytest.mark.e2e
def test_r_set_3_a_run_of_an_unconfigured_integration_stops_at_validate_setup(
        ledger: psycopg.Connection, airflow_home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    LedgerHook().integrations.create("Acme Corp", dt.date(2025, 1, 1))
    dag = next(iter(hubspot_dags(parse()).values()))
    run = dag.test(logical_date=None)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed", states
    assert states["validate_setup"] == "failed"
    assert all(states[t] == "upstream_failed" for t in FIXED_ORDER[1:-1]), states
    # The report runs whatever happened upstream: it settles the run as failed, and fails.
    assert states["report"] == "failed"
    out = capfd.readouterr()
    assert "Setup incomplete: HubSpot is not connected yet; accounts-receivable account" in \
        out.out + out.err
    status, message = ledger.execute(
        "SELECT status, message FROM ledger.sync_runs").fetchone()
    assert status == "failed"
    assert message.startswith("validate_setup: Setup incomplete: HubSpot is not connected yet")


def serialized(dag: Any) -> dict[str, Any]:
    """What Airflow stores of the DAG (the serialized DAG of its DAG versions)."""
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    return LazyDeserializedDAG.from_dag(dag).data


def dag_hash(dag: Any) -> str:
    """The hash Airflow compares to decide whether a parse is a new DAG version."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    return SerializedDagModel(LazyDeserializedDAG.from_dag(dag)).dag_hash


def only_dag(bag: DagBag) -> Any:
    dags = hubspot_dags(bag)
    assert len(dags) == 1, list(dags)
    return next(iter(dags.values()))


@pytest.mark.integration
def test_issue_15_status_settings_and_cutoff_changes_are_no_new_dag_version(
        ledger: psycopg.Connection, books: Callable[..., int]) -> None:
    integration_id = books("Acme Corp", configured=True)
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.CONNECTED)
    before = only_dag(parse())

    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.ERROR,
                                        "HubSpot access was revoked or has expired: "
                                        "reconnect HubSpot")
    save_settings(integration_id, sync_invoices=False)
    ledger.execute("UPDATE ledger.integrations SET cutoff_date = '2023-07-01' WHERE id = %s",
                   [integration_id])
    after = only_dag(parse())
    assert serialized(after) == serialized(before)
    assert dag_hash(after) == dag_hash(before)

    # The schedule is the DAG's: changing it is a new version (so the comparison above can fail).
    ledger.execute("UPDATE ledger.integrations SET schedule = '@daily' WHERE id = %s",
                   [integration_id])
    rescheduled = only_dag(parse())
    assert dag_hash(rescheduled) != dag_hash(before)
    assert rescheduled.timetable.summary == "0 0 * * *"


@pytest.mark.integration
def test_renaming_the_organization_keeps_the_dag_id(ledger: psycopg.Connection) -> None:
    integration_id = LedgerHook().integrations.create("Acme Corp", dt.date(2025, 1, 1))
    before = only_dag(parse())
    ledger.execute("UPDATE ledger.organizations SET name = 'Acme Group plc'")
    after = only_dag(parse())
    assert after.dag_id == before.dag_id == f"hubspot_sync__integration_{integration_id}"
    assert (before.dag_display_name, after.dag_display_name) == (
        f"HubSpot sync · Acme Corp (integration {integration_id})",
        f"HubSpot sync · Acme Group plc (integration {integration_id})")
    assert "organization:Acme Group plc" in after.tags


@pytest.mark.e2e
def test_issue_15_an_integration_in_error_keeps_its_schedule_and_its_run_fails_at_setup(
        ledger: psycopg.Connection, airflow_home: Path, books: Callable[..., int],
        capfd: pytest.CaptureFixture[str]) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    integration_id = books("Revoked Org", configured=True)
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.ERROR,
                                        "HubSpot access was revoked or has expired: "
                                        "reconnect HubSpot")
    dag = only_dag(parse())
    assert dag.timetable.summary == "0 * * * *"

    logical_date = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    run = dag.test(run_after=logical_date, logical_date=logical_date)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed", states
    assert states["validate_setup"] == "failed"
    assert all(states[t] == "upstream_failed" for t in FIXED_ORDER[1:-1]), states
    out = capfd.readouterr()
    reason = ("HubSpot is not connected (HubSpot access was revoked or has expired: reconnect "
              "HubSpot)")
    assert reason in out.out + out.err
    status, message = ledger.execute("SELECT status, message FROM ledger.sync_runs").fetchone()
    assert (status, message.startswith(f"validate_setup: {reason}")) == ("failed", True)
    # What the UI shows as the DAG's Next Run: the schedule goes on (it used to go blank).
    with create_session() as session:
        model = DagModel.get_current(dag.dag_id, session=session)
        assert model is not None and model.next_dagrun is not None
        assert model.timetable_summary == "0 * * * *"


@pytest.mark.unit
def test_the_dag_file_is_discoverable_by_its_code_not_its_docstring() -> None:
    # Airflow's safe mode parses a file only if it mentions "airflow" and "dag": the DAG file's
    # code must say so itself (issue 11), not a comment or docstring that may be edited away.
    import ast

    files = sorted(DAGS_FOLDER.glob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = {(node.module, alias.name) for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert ("airflow.sdk", "DAG") in imports, path


@pytest.mark.unit
def test_one_dag_file_per_shard_each_building_its_own_integrations() -> None:
    """Issue 12 (parse): SHARDS files, file k builds the integrations whose id is k mod SHARDS,
    so every integration's DAG is built by exactly one file."""
    import ast

    files = sorted(DAGS_FOLDER.glob("*.py"))
    assert [p.name for p in files] == [f"hubspot_sync_{k}.py" for k in range(dag_factory.SHARDS)]
    for k, path in enumerate(files):
        calls = [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "build_dags"]
        assert [ast.literal_eval(kw.value) for c in calls for kw in c.keywords
                if kw.arg == "shard"] == [k], path
    everyone = [summary(i) for i in range(1, 30)]
    built = [set(dag_factory.build_dags(lambda: everyone, shard=k))
             for k in range(dag_factory.SHARDS)]
    assert sorted(d for shard in built for d in shard) == sorted(
        dag_factory.dag_id_for(i) for i in range(1, 30))
    assert all(dag_factory.dag_file_for(i).name == f"hubspot_sync_{i % dag_factory.SHARDS}.py"
               for i in range(1, 30))
