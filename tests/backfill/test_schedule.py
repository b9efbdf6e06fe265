"""Issue 15: an integration's schedule is set by the CLI and the settings endpoint, checked
first (a schedule Airflow cannot run on is refused and nothing is saved), and the DAG follows a
saved schedule at its next parse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from airflow.dag_processing.dagbag import DagBag
from api.conftest import airflow_api, books  # noqa: F401 - fixtures, tests/api
from api.helpers import AirflowApi

from hubspot_ledger.cli import main
from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.schedule import schedule_problem

BAD = ["61 * * * *", "every hour", "* * * *", "0 0 * * * *", "@once", "@sometimes", " ",
       "0 * * * *\n@daily"]


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Parses in these tests read the ledger, not a list cached by another test."""
    monkeypatch.setenv("HUBSPOT_LEDGER_STATE_DIR", str(tmp_path / "state"))
    yield


def _schedule(integration_id: int) -> str:
    return LedgerHook().integrations.get(integration_id).schedule


@pytest.mark.unit
@pytest.mark.parametrize("value", ["0 * * * *", "30 2 * * 1-5", "*/15 * * * *", "@daily",
                                   "@monthly", " 0  3 * * * "])
def test_cron_expressions_and_presets_are_schedules(value: str) -> None:
    assert schedule_problem(value) is None


@pytest.mark.unit
@pytest.mark.parametrize("value", BAD)
def test_anything_else_is_not(value: str) -> None:
    assert schedule_problem(value)


@pytest.mark.integration
def test_cli_sets_the_schedule_and_the_dag_follows_it_at_the_next_parse(
        ledger: psycopg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    integration_id = LedgerHook().integrations.create("Schedule Co", dt.date(2025, 1, 1))
    ledger.execute("UPDATE ledger.integrations SET status = 'connected' WHERE id = %s",
                   [integration_id])
    assert main(["integration", "set", "--integration", str(integration_id), "--schedule",
                 " 30  2 * * * "]) == 0
    assert capsys.readouterr().out.startswith(
        f"integration {integration_id} schedule: 30 2 * * * (UTC;")
    assert _schedule(integration_id) == "30 2 * * *"
    (dag,) = [d for d in DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags.values()
              if d.dag_id.endswith(f"_{integration_id}")]
    assert dag.timetable.timetable.summary == "30 2 * * *"

    assert main(["integration", "set", "--integration", str(integration_id), "--schedule",
                 "@daily"]) == 0
    (dag,) = [d for d in DagBag(dag_folder=str(PROJECT_ROOT / "dags")).dags.values()
              if d.dag_id.endswith(f"_{integration_id}")]
    assert dag.timetable.timetable.summary == "0 0 * * *"


@pytest.mark.integration
@pytest.mark.parametrize("value", ["61 * * * *", "@once"])
def test_cli_refuses_a_bad_cron_in_one_line_and_saves_nothing(
        ledger: psycopg.Connection, capsys: pytest.CaptureFixture[str], value: str) -> None:
    integration_id = LedgerHook().integrations.create("Schedule Co", dt.date(2025, 1, 1))
    assert main(["integration", "set", "--integration", str(integration_id), "--schedule",
                 value]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hubspot-ledger: Schedule not saved: {value!r}")
    assert _schedule(integration_id) == "@hourly"


@pytest.mark.integration
def test_cli_says_an_unknown_integration_does_not_exist(
        ledger: psycopg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["integration", "set", "--integration", "4040", "--schedule", "@daily"]) == 1
    assert capsys.readouterr().err.strip() == "hubspot-ledger: Integration 4040 does not exist"


@pytest.mark.integration
@pytest.mark.e2e
def test_the_settings_endpoint_saves_a_schedule(airflow_api: AirflowApi,  # noqa: F811
                                                books: Callable[..., int]) -> None:  # noqa: F811
    integration_id = books(configured=True)
    saved = airflow_api.call("PUT", f"/{integration_id}/settings/",
                             json={"schedule": "15 * * * *"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["schedule"] == "15 * * * *"
    assert airflow_api.call("GET", f"/{integration_id}/settings/").json()["schedule"] == \
        "15 * * * *"
    assert _schedule(integration_id) == "15 * * * *"


@pytest.mark.integration
@pytest.mark.e2e
def test_the_settings_endpoint_refuses_a_bad_cron_with_422_and_saves_nothing(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:  # noqa: F811
    integration_id = books()
    response = airflow_api.call("PUT", f"/{integration_id}/settings/",
                                json={"schedule": "61 * * * *", "sync_invoices": True})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Schedule not saved: '61 * * * *' is not a "
                                                 "cron expression")
    after = airflow_api.call("GET", f"/{integration_id}/settings/").json()
    assert after["schedule"] == "@hourly" and after["sync_invoices"] is False
