"""DAG-file parse time with many integrations, in a fresh process as Airflow's DAG processor
parses a file (Airflow itself already imported, the project's modules not yet).

    python -m hubspot_ledger_tools.bench.parse_time --integrations 2000

Times (1) `DagBag` over the project's `dags/` folder against the ledger that `ledger_default`
names, which must hold the integrations (Airflow's own per-file figure, `FileLoadStat.duration`,
is reported too), and (2) `dag_factory.build_dags` over the same number of integrations handed
in by a fake fetch, which leaves the ledger read out. Prints `BENCH-RESULT {json}`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from hubspot_ledger_tools.bench.worker import RESULT_PREFIX, read_result


def _summaries(count: int) -> list[Any]:
    from hubspot_ledger.load.records import IntegrationStatus, IntegrationSummary

    return [IntegrationSummary(id=i, organization_id=i, organization_name=f"Org {i}",
                               status=IntegrationStatus.CONNECTED, schedule="@hourly",
                               cutoff_date=dt.date(2025, 1, 1)) for i in range(1, count + 1)]


def _rest(walls: list[float]) -> float:
    """The median of the parses after the first (the first alone if there is no other)."""
    return statistics.median(walls[1:] or walls)


def time_dagbag(repeats: int) -> dict[str, Any]:
    """`DagBag` of `dags/`; a parse that fails (Airflow's 30 s import time-out, say) is a
    result too: the error is reported and the remaining repeats are skipped."""
    from airflow.dag_processing.dagbag import DagBag

    from hubspot_ledger.config import PROJECT_ROOT

    walls: list[float] = []
    file_stats: list[float] = []
    largest: list[float] = []
    dags, files, error = 0, 0, None
    for _ in range(repeats):
        start = time.perf_counter()
        bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
        walls.append(time.perf_counter() - start)
        durations = [s.duration.total_seconds() for s in bag.dagbag_stats]
        file_stats.append(sum(durations))
        largest.append(max(durations, default=0.0))
        dags, files = len(bag.dags), len(durations)
        if bag.import_errors:
            error = _first_error(next(iter(bag.import_errors.values())))
            break
    # The DAG processor parses the files side by side, `parsing_processes` at a time: a whole
    # parse of the folder takes about the larger of its longest file and the sum over them.
    processes = _parsing_processes()
    cycle = [max(top, total / processes) for top, total in zip(largest, file_stats, strict=True)]
    return {"dags": dags, "first_s": walls[0], "median_s": _rest(walls),
            "file_first_s": file_stats[0], "file_median_s": _rest(file_stats),
            "files": files, "largest_file_first_s": largest[0],
            "largest_file_median_s": _rest(largest), "parsing_processes": processes,
            "cycle_first_s": cycle[0], "cycle_median_s": _rest(cycle), "error": error}


def _parsing_processes() -> int:
    from airflow.configuration import conf

    return max(1, conf.getint("dag_processor", "parsing_processes", fallback=2))


def _first_error(traceback: str) -> str:
    """The line that names the error (Airflow's import time-out, for one)."""
    lines = [line.strip() for line in traceback.strip().splitlines() if line.strip()]
    named = [line for line in lines if "Timeout" in line or "Error:" in line]
    return (named or lines or [""])[0]


def time_build_dags(count: int, repeats: int) -> dict[str, Any]:
    from hubspot_ledger.dag_factory import build_dags

    summaries = _summaries(count)
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        dags = build_dags(fetch=lambda: summaries)
        walls.append(time.perf_counter() - start)
    return {"dags": len(dags), "first_s": walls[0], "median_s": _rest(walls)}


# `count` organizations with one connected integration each (hourly, as production schedules
# them), in three set-based statements: through `create_integration` one by one, 2,000 would
# take longer than the timing itself. Connected, so each DAG carries its timetable.
_FILL = (
    "INSERT INTO ledger.organizations (name) SELECT 'Parse Org ' || g "
    "FROM generate_series(1, %(count)s) g ON CONFLICT (name) DO NOTHING",
    "INSERT INTO ledger.integrations (organization_id, provider, status, cutoff_date) "
    "SELECT o.id, 'hubspot', 'connected', DATE '2025-01-01' FROM ledger.organizations o "
    "WHERE o.name LIKE 'Parse Org %%' AND NOT EXISTS (SELECT 1 FROM ledger.integrations i "
    "WHERE i.organization_id = o.id) ORDER BY o.id LIMIT greatest(0, %(count)s - "
    "(SELECT count(*) FROM ledger.integrations))",
    "INSERT INTO ledger.integration_settings (organization_id, integration_id, sync_invoices) "
    "SELECT i.organization_id, i.id, false FROM ledger.integrations i WHERE NOT EXISTS "
    "(SELECT 1 FROM ledger.integration_settings s WHERE s.integration_id = i.id)",
)


def fill_ledger(count: int) -> int:
    """Make the ledger that `ledger_default` names hold at least `count` integrations."""
    from hubspot_ledger.hooks.ledger import LedgerHook

    with LedgerHook() as hook, hook.new_connection() as conn, conn.transaction():
        for statement in _FILL:
            conn.execute(statement, {"count": count})
        row = conn.execute("SELECT count(*) FROM ledger.integrations").fetchone()
    return int(row[0]) if row else 0


def measure(count: int, repeats: int = 3) -> dict[str, Any]:
    """Make the ledger hold `count` integrations, then time the parse in a child process."""
    fill_ledger(count)
    proc = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "hubspot_ledger_tools.bench.parse_time",
         "--integrations", str(count), "--repeats", str(repeats)],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(), check=False)
    result = read_result(proc.stdout)
    if result is None:
        raise RuntimeError(f"the parse timing exited with {proc.returncode} and no result")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubspot_ledger_tools.bench.parse_time")
    parser.add_argument("--integrations", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["HUBSPOT_LEDGER_STATE_DIR"] = tempfile.mkdtemp(prefix="bench-parse-")
    import airflow.models.dag  # noqa: F401 - the DAG processor has Airflow loaded already

    result = {"integrations": args.integrations, "dagbag": time_dagbag(args.repeats),
              "build_dags": time_build_dags(args.integrations, args.repeats)}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
