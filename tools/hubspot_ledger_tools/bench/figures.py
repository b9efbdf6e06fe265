"""The figures of a phase, derived from what `phase.run_phase` collected, and issue 5's targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubspot_ledger_tools.bench import minimal
from hubspot_ledger_tools.bench.minimal import Floor
from hubspot_ledger_tools.bench.phase import LOADED_TABLES, PhaseResult

MB = 1024  # VmHWM and VmRSS are in KiB


@dataclass(frozen=True)
class Figures:
    requests: int
    minimal: int
    throttled: int  # 429 answers
    failed: int  # 5xx answers and dropped connections
    wall_s: float
    floor: Floor
    rows_loaded: int
    rows_bookkeeping: int
    http_s: float
    sleep_s: float
    db_s: float
    db_round_trips: int
    peak_rss_mb: float
    start_rss_mb: float

    @property
    def request_ratio(self) -> float | None:
        return self.requests / self.minimal if self.minimal else None

    @property
    def floor_ratio(self) -> float | None:
        return self.wall_s / self.floor.seconds if self.floor.seconds else None

    @property
    def other_s(self) -> float:
        return max(0.0, self.wall_s - self.http_s - self.sleep_s - self.db_s)

    @property
    def rows_per_s(self) -> float | None:
        return self.rows_loaded / self.wall_s if self.wall_s else None

    @property
    def rows_per_ledger_s(self) -> float | None:
        return self.rows_loaded / self.db_s if self.db_s else None

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "floor"},
                "floor_s": self.floor.seconds, "floor_general_s": self.floor.general,
                "floor_latency_s": self.floor.latency,
                "floor_search_s": self.floor.search, "floor_sequential_s": self.floor.sequential,
                "request_ratio": self.request_ratio, "floor_ratio": self.floor_ratio,
                "other_s": self.other_s, "rows_per_s": self.rows_per_s,
                "rows_per_ledger_s": self.rows_per_ledger_s}


def minimal_plan(phase: PhaseResult) -> dict[str, tuple[int, str]]:
    return minimal.by_endpoint(minimal.plan(phase.reads, phase.wall_s))


def _rows(phase: PhaseResult, loaded: bool) -> int:
    return sum(sum(c.values()) for t, c in phase.rows.items()
               if (t in LOADED_TABLES) == loaded)


def figures(phase: PhaseResult) -> Figures:
    meter = phase.worker.get("meter", {})
    plan = minimal_plan(phase)
    statuses = phase.statuses
    return Figures(
        requests=sum(phase.requests.values()), minimal=sum(n for n, _ in plan.values()),
        throttled=statuses.get("429", 0),
        failed=sum(n for s, n in statuses.items() if s == "None" or s.startswith("5")),
        wall_s=phase.wall_s, floor=minimal.floor({e: n for e, (n, _) in plan.items()},
                                                phase.latency_ms),
        rows_loaded=_rows(phase, True), rows_bookkeeping=_rows(phase, False),
        http_s=meter.get("http_s", 0.0), sleep_s=meter.get("sleep_s", 0.0),
        db_s=meter.get("db_s", 0.0), db_round_trips=int(meter.get("db_round_trips", 0)),
        peak_rss_mb=phase.worker.get("peak_rss_kb", 0) / MB,
        start_rss_mb=phase.worker.get("rss_start_kb", 0) / MB)


@dataclass(frozen=True)
class Target:
    phase: str
    what: str
    measured: str
    met: bool


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def phase_targets(phase: PhaseResult, f: Figures) -> list[Target]:
    """Issue 12's targets that apply to this phase (those of issue 5 where 12 sets none)."""
    name, large = phase.name, phase.scale in ("large", "")
    found = [Target(name, "zero 429 responses", f"{f.throttled:,}", f.throttled == 0),
             Target(name, "peak RSS ≤ 400 MB", f"{f.peak_rss_mb:,.0f} MB",
                    f.peak_rss_mb <= 400)]
    if name == "nochange":
        return [Target(name, "requests ≤ 6", f"{f.requests:,}", f.requests <= 6),
                Target(name, "sync time ≤ 1.5 s", f"{f.wall_s:,.1f} s", f.wall_s <= 1.5),
                *found]
    ratio = f.request_ratio
    limit = {"full": 1.02 if large else 1.10, "incremental": 1.05}.get(name, 1.10)
    found.insert(0, Target(name, f"requests ≤ {limit:.2f} × minimal",
                           f"{f.requests:,} / {f.minimal:,} = {_ratio(ratio)}",
                           ratio is not None and ratio <= limit))
    if name == "incremental":
        found.insert(1, Target(name, "wall time ≤ 3 s", f"{f.wall_s:,.1f} s", f.wall_s <= 3))
    if name == "full":
        bound = 1.15 if large else 1.5
        found.insert(1, Target(name, f"wall time ≤ {bound:.2f} × floor",
                               f"{f.wall_s:,.1f} s / {f.floor.seconds:,.1f} s = "
                               f"{_ratio(f.floor_ratio)}",
                               f.floor_ratio is not None and f.floor_ratio <= bound))
        rate = f.rows_per_ledger_s
        found.insert(2, Target(name, "ledger load ≥ 20,000 rows/s",
                               f"{rate:,.0f} rows/s of ledger time" if rate else "n/a",
                               rate is not None and rate >= 20_000))
    return found


def parse_target(parse: dict[str, Any]) -> Target:
    """A whole parse of `dags/` as the DAG processor does it, files side by side (reports of
    a single DAG file have no cycle figure: the file's own time is the cycle)."""
    bag = parse["dagbag"]
    seconds = float(bag.get("cycle_first_s", bag["file_first_s"]))
    error = bag.get("error")  # e.g. Airflow's 30 s import time-out
    how = (f" ({bag['files']} files, {bag['parsing_processes']} at a time; longest file "
           f"{bag['largest_file_first_s']:.2f} s)" if "files" in bag else "")
    return Target("parse", f"DAG-file parse with {parse['integrations']:,} integrations ≤ 2 s",
                  f"{seconds:.2f} s{how}" + (f", failed: {error}" if error else ""),
                  seconds <= 2.0 and not error)
