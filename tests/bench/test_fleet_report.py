"""The fleet phase's part of the report (issue 12, item 5): its section in report.md, its
targets, and its `fleet` key in report.json beside every existing key, read back by --rerender.
The phase itself runs a whole Airflow deployment: `make bench` measures it, the Celery test
(tests/celery) exercises the same harness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hubspot_ledger_tools.bench.report import Bench, load, write

pytestmark = [pytest.mark.unit]


def _portal(portal_id: int, wall: float, floor: float, throttled: int = 0) -> dict[str, Any]:
    return {"portal_id": portal_id, "dag_id": f"hubspot_sync__fleet_{portal_id}",
            "run_id": "scheduled__x", "state": "success", "started_after_s": 1.0,
            "run_wall_s": wall, "sync_wall_s": wall / 2, "floor_s": floor,
            "floor_ratio": wall / floor, "requests": 70, "throttled": throttled, "tasks": 8}


def _fleet(peak: int, *portals: dict[str, Any]) -> dict[str, Any]:
    ratios = sorted(p["floor_ratio"] for p in portals)
    return {"integrations": len(portals), "scale": "medium", "executor": "LocalExecutor",
            "parallelism": len(portals), "cutoff": "2020-01-01", "latency": "off",
            "wall_s": 60.0, "runs_succeeded": len(portals),
            "requests": 70 * len(portals), "throttled": sum(p["throttled"] for p in portals),
            "failed": 0, "floor_ratio": {"max": ratios[-1], "median": ratios[len(ratios) // 2]},
            "ledger_connections": {"peak": peak, "running_tasks_at_peak": 2, "samples": 100,
                                   "pool": 3 * len(portals), "connections_per_task": 3,
                                   "server_max_connections": 97},
            "worker_cpu_s": {"fleet": 40.0, "per_full_run": 20.0, "nochange_run": 9.5},
            "nochange": {"dag_id": "d", "run_id": "manual__x", "state": "success",
                         "run_wall_s": 30.0, "worker_cpu_s": 9.5, "tasks": 8,
                         "cpu_per_task_s": 1.19, "requests": 5, "throttled": 0},
            "portals": list(portals)}


def _bench(fleet: dict[str, Any]) -> Bench:
    return Bench(meta={"started": "2026-12-02T16:00:00+00:00", "scale": "large", "seed": 1,
                       "cutoff": "2020-01-01", "phases": ["fleet"], "change_percent": 1.0,
                       "overlap_s": 2.0, "commit": "abc", "machine": "2 CPUs"},
                 portal={}, fleet=fleet)


def test_fleet_within_targets_is_marked_met(tmp_path: Path) -> None:
    bench = _bench(_fleet(5, _portal(80_001, 10.0, 8.0), _portal(80_002, 11.0, 8.0)))
    targets = {t.what: t for t in bench.targets() if t.phase == "fleet"}
    assert all(t.met for t in targets.values()), targets
    md, js = write(bench, tmp_path)
    text = md.read_text()
    assert "## Fleet: 2 integrations syncing at once through the scheduler" in text
    assert "| 80002 | success |" in text
    data = json.loads(js.read_text())
    assert {"meta", "portal", "notes", "phases", "parse", "targets"} <= set(data)
    assert data["fleet"]["ledger_connections"]["peak"] == 5


def test_a_slow_portal_a_429_and_too_many_sessions_are_each_marked_not_met() -> None:
    fleet = _fleet(7, _portal(80_001, 10.0, 8.0), _portal(80_002, 20.0, 8.0, throttled=1))
    missed = {t.what: t.measured for t in _bench(fleet).targets() if not t.met}
    assert missed == {
        "every portal's DAG run ≤ 1.5 × its own floor (2 at once)":
            "worst 2.50× (portal 80002: 20.0 s / 8.0 s); median 2.50×",
        "zero 429 responses": "1",
        "ledger connections ≤ the pool": "peak 7, pool 6 (a task takes up to 3)",
    }


def test_rerender_reads_the_fleet_back(tmp_path: Path) -> None:
    bench = _bench(_fleet(4, _portal(80_001, 10.0, 8.0)))
    _, js = write(bench, tmp_path)
    assert load(js).fleet == bench.fleet
