"""One benchmark phase in a process of its own: the DAG's sync steps, then the report task.

    python -m hubspot_ledger_tools.bench.worker --integration 7 --dag-run-id bench-full-1a2b

Runs `sync.runner.run_step` for each step in the DAG's order and `settle_run`, as the Airflow
tasks do, and prints one line `BENCH-RESULT {json}` on stdout: wall time and, per step, where the
time went. The split is measured at the libraries' doors, not inside the sync code:
HTTP (`requests.Session.send`), sleeping (`time.sleep`: the rate limiter and retry back-off) and
the ledger (`psycopg.Connection.wait`: every round trip to PostgreSQL). Peak RSS is this
process's high-water mark (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "
STEP_ORDER = ("invoices", "products", "companies", "deals")


def read_result(stdout: str) -> dict[str, Any] | None:
    """The `BENCH-RESULT` line of a benchmark child's output."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX):])
            return result
    return None


@dataclass
class Meter:
    """Time spent at each door, and how often it was passed."""

    http_s: float = 0.0
    http_calls: int = 0
    sleep_s: float = 0.0
    db_s: float = 0.0
    db_round_trips: int = 0

    def snapshot(self) -> Meter:
        return Meter(**asdict(self))

    def since(self, start: Meter) -> dict[str, float]:
        now, then = asdict(self), asdict(start)
        return {k: now[k] - then[k] for k in now}


@dataclass
class StepResult:
    step: str
    wall_s: float
    counts: dict[str, int] = field(default_factory=dict)
    meter: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    peak_rss_kb: int = 0  # the process's high-water mark when the step ended


def _timed(meter: Meter, seconds: str, calls: str | None, original: Callable[..., Any]
           ) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            setattr(meter, seconds, getattr(meter, seconds) + time.perf_counter() - start)
            if calls:
                setattr(meter, calls, getattr(meter, calls) + 1)
    return wrapper


def install(meter: Meter) -> None:
    """Wrap the three doors (process-wide: this process does nothing else)."""
    import psycopg
    import requests

    requests.Session.send = _timed(meter, "http_s", "http_calls",  # type: ignore[method-assign]
                                   requests.Session.send)
    time.sleep = _timed(meter, "sleep_s", None, time.sleep)
    psycopg.Connection.wait = _timed(  # type: ignore[method-assign]
        meter, "db_s", "db_round_trips", psycopg.Connection.wait)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def rss_kb() -> int:
    """Current resident set size (VmRSS) in KiB."""
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    """This process's RSS high-water mark (VmHWM), in KiB. Not `ru_maxrss`: Linux carries that
    across exec, so a child spawned by the harness (which holds the sandbox's portal) would
    start with the harness's own peak."""
    return _status_kb("VmHWM") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@contextmanager
def step_clock(results: list[StepResult], step: str, meter: Meter) -> Iterator[StepResult]:
    result = StepResult(step=step, wall_s=0.0)
    start, before = time.perf_counter(), meter.snapshot()
    try:
        yield result
    finally:
        result.wall_s = time.perf_counter() - start
        result.meter = meter.since(before)
        result.peak_rss_kb = peak_rss_kb()
        results.append(result)


def run_phase(integration_id: int, dag_run_id: str, meter: Meter) -> dict[str, Any]:
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.sync.run_report import settle_run
    from hubspot_ledger.sync.runner import run_step

    steps = list(STEP_ORDER)
    if not LedgerHook().settings.get(integration_id).sync_invoices:
        steps.remove("invoices")
    results: list[StepResult] = []
    start = time.perf_counter()
    for step in steps:
        with step_clock(results, step, meter) as result:
            try:
                result.counts = dict(run_step(step, integration_id, dag_run_id))
            except Exception as exc:  # noqa: BLE001 - a failed step is a result, reported
                result.error = f"{type(exc).__name__}: {exc}"
        if result.error:
            break
    with step_clock(results, "report", meter):
        ok, report = settle_run(integration_id, dag_run_id)
    return {"ok": ok, "report": report, "wall_s": time.perf_counter() - start,
            "steps": [asdict(r) for r in results]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubspot_ledger_tools.bench.worker")
    parser.add_argument("--integration", type=int, required=True)
    parser.add_argument("--dag-run-id", required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="      %(asctime)s %(message)s",
                        datefmt="%H:%M:%S", level=logging.WARNING)
    logging.getLogger("hubspot_ledger").setLevel(logging.INFO if args.verbose
                                                 else logging.WARNING)
    logging.getLogger("hubspot_ledger.sync.runner").setLevel(logging.INFO)
    meter = Meter()
    install(meter)
    import hubspot_ledger.sync.runner  # noqa: F401 - RSS before the sync = after its imports

    rss_start = rss_kb()
    result = run_phase(args.integration, args.dag_run_id, meter)
    result.update(meter=asdict(meter), rss_start_kb=rss_start,
                  peak_rss_kb=peak_rss_kb())
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
