"""`make bench` (issue 5): the harness itself, at a tiny scale — it runs every phase end to end,
writes a readable report and its JSON twin, and leaves no database behind. The targets are
measured by `make bench`, never asserted here. Plus the minimal-request formula, by hand."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from hubspot_ledger_tools.bench import minimal
from hubspot_ledger_tools.bench.census import ReadSet
from hubspot_ledger_tools.bench.environment import database_uri

PHASES = ["full", "incremental", "nochange"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    database = f"ledger_bench_test_{os.getpid()}"
    proc = subprocess.run(
        [sys.executable, "-m", "hubspot_ledger_tools.bench", "--scale", "tiny", "--overlap", "0",
         "--phases", ",".join(PHASES),  # the fleet phase starts a whole Airflow: bench only
         "--parse-integrations", "3", "--database", database, "--out", str(out)],
        capture_output=True, text=True, timeout=180, env=os.environ.copy(), check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"out": out, "database": database, "stdout": proc.stdout,
            "report": json.loads((out / "report.json").read_text()),
            "markdown": (out / "report.md").read_text()}


@pytest.mark.integration
@pytest.mark.deployment  # runs the bench's phases: a minute and more
def test_every_phase_runs_and_is_measured(bench: dict[str, Any]) -> None:
    phases = bench["report"]["phases"]
    assert [p["name"] for p in phases] == PHASES
    for phase in phases:
        assert phase["worker"]["ok"], phase["worker"]
        assert phase["sync_run"]["status"] == "success"
        figures = phase["figures"]
        assert figures["requests"] == sum(phase["requests"].values()) > 0
        assert figures["minimal"] == sum(m["count"] for m in phase["minimal"].values()) > 0
        assert figures["wall_s"] > 0 and figures["floor_s"] > 0
        assert figures["peak_rss_mb"] >= figures["start_rss_mb"] > 0
        assert [s["step"] for s in phase["worker"]["steps"]] == [
            "invoices", "products", "companies", "deals", "report"]
    full, incremental, _ = phases
    assert full["figures"]["rows_loaded"] > 0 and full["figures"]["db_round_trips"] > 0
    assert incremental["reads"]["deals"] >= 1  # 1% of the closed-won deals, at least one


@pytest.mark.integration
@pytest.mark.deployment  # runs the bench's phases: a minute and more
def test_the_report_is_a_table_per_phase_with_the_targets(bench: dict[str, Any]) -> None:
    markdown = bench["markdown"]
    for heading in ("## Targets of issue 12", "## Phase 1: full sync",
                    "## Phase 2: incremental sync", "## Phase 3: sync with nothing changed",
                    "## DAG-file parse with 3 integrations", "## How the figures are made"):
        assert heading in markdown
    assert markdown.count("| endpoint | requests | minimal | ratio |") == 3
    targets = bench["report"]["targets"]
    assert {t["phase"] for t in targets} == {*PHASES, "parse"}
    assert all(("met" if t["met"] else "NOT MET") in bench["stdout"] for t in targets)
    assert bench["report"]["parse"]["dagbag"]["dags"] == 3
    # Issue 12: the bench runs under the sandbox's latency model and says so.
    assert bench["report"]["meta"]["latency_ms"]["search"] == 250
    assert "Latency model: on — medians" in markdown


@pytest.mark.integration
@pytest.mark.deployment  # runs the bench's phases: a minute and more
def test_the_markdown_can_be_rendered_again_from_the_json(bench: dict[str, Any]) -> None:
    proc = subprocess.run([sys.executable, "-m", "hubspot_ledger_tools.bench", "--rerender",
                           "--out", str(bench["out"])], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (bench["out"] / "report.md").read_text() == bench["markdown"]


@pytest.mark.integration
@pytest.mark.deployment  # runs the bench's phases: a minute and more
def test_the_bench_database_is_dropped(bench: dict[str, Any]) -> None:
    with psycopg.connect(database_uri("postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             [bench["database"]]).fetchone()
    assert found is None


@pytest.mark.unit
def test_minimal_requests_of_a_first_run_by_hand() -> None:
    reads = ReadSet(full=True, sync_invoices=True, products=2_940, invoices=19_000,
                    invoice_lines=30_000, deals=20_803, companies=8_000, deal_lines=35_050)
    plan = {e: n for e, (n, _) in minimal.by_endpoint(minimal.plan(reads)).items()}
    assert plan == {
        "GET /crm/v3/objects/products": 30,
        "POST /crm/v3/objects/invoices/search": 95,
        "POST /crm/v4/associations/invoices/line_items/batch/read": 19,
        "POST /crm/v3/objects/line_items/batch/read": 300 + 351,
        "POST /crm/v3/objects/deals/search": 105,
        "POST /crm/v4/associations/deals/companies/batch/read": 21,
        "POST /crm/v4/associations/deals/line_items/batch/read": 21,
        "POST /crm/v3/objects/companies/batch/read": 80,
    }
    # Issue 12: HubSpot's rolling windows let a whole window out at once, then one more window
    # each 10 s (general, 110) or 1 s (search, 5).
    floor = minimal.floor(plan)
    general = 30 + 19 + 651 + 21 + 21 + 80  # 822 → ⌈822 / 110⌉ = 8 windows
    assert floor.general == pytest.approx((math.ceil(general / 110) - 1) * 10.0) == 70.0
    assert floor.search == pytest.approx(math.ceil((95 + 105) / 5) - 1) == 39.0
    assert floor.seconds == floor.general
    # With the latency model on, the last answer's time is added: search's median, the
    # slowest class these requests use.
    with_latency = minimal.floor(plan, {"list": 120.0, "batch": 120.0, "search": 250.0,
                                        "associations": 150.0})
    assert with_latency.seconds == pytest.approx(70.25)


@pytest.mark.unit
def test_minimal_requests_of_runs_with_little_or_nothing_new() -> None:
    nothing = minimal.by_endpoint(minimal.plan(ReadSet(full=False, sync_invoices=True)))
    assert {e: n for e, (n, _) in nothing.items()} == {
        f"POST /crm/v3/objects/{kind}/search": 1
        for kind in ("invoices", "products", "line_items", "companies", "deals")}
    edited = ReadSet(full=False, sync_invoices=False, deals=208, companies=190,
                     deal_lines=350, changed_lines=104, deals_by_line=104)
    plan = {e: n for e, (n, _) in minimal.by_endpoint(minimal.plan(edited, 3_100)).items()}
    assert plan["POST /crm/v3/objects/deals/search"] == 1  # 104 found by their own change
    assert plan["POST /crm/v3/objects/deals/batch/read"] == 2  # 104 through an edited line
    assert plan["POST /crm/v3/objects/line_items/batch/read"] == 4
    assert plan[minimal.TOKEN_ENDPOINT] == 2  # 3,100 s of run: two token renewals
    assert "POST /crm/v4/associations/line_items/invoices/batch/read" not in plan
