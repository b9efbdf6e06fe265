"""`bench/report.md` (for people) and `bench/report.json` (the same figures, for tools)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hubspot_ledger_tools.bench import minimal
from hubspot_ledger_tools.bench.census import ReadSet
from hubspot_ledger_tools.bench.figures import (
    Figures,
    Target,
    figures,
    minimal_plan,
    parse_target,
    phase_targets,
)
from hubspot_ledger_tools.bench.phase import LOADED_TABLES, PhaseResult


@dataclasses.dataclass
class Bench:
    """Everything one `make bench` run measured."""

    meta: dict[str, Any]
    portal: dict[str, int]
    phases: list[PhaseResult] = dataclasses.field(default_factory=list)
    parse: dict[str, Any] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    fleet: dict[str, Any] | None = None  # the fleet phase (bench/fleet.py)

    def targets(self) -> list[Target]:
        found = [t for p in self.phases for t in phase_targets(p, figures(p))]
        found += fleet_targets(self.fleet) if self.fleet else []
        return found + ([parse_target(self.parse)] if self.parse else [])


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _s(value: float) -> str:
    return f"{value:,.1f} s"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _mark(met: bool) -> str:
    return "met" if met else "**NOT MET**"


def _header(bench: Bench) -> list[str]:
    meta = bench.meta
    portal = " · ".join(f"{k} {v:,}" for k, v in bench.portal.items())
    return [f"# `make bench`: HubSpot → ledger at `--scale {meta['scale']}`", "",
            f"Run {meta['started']} on {meta['machine']}; commit `{meta['commit']}`; "
            f"sandbox seed {meta['seed']}, HubSpot's own rate limits (110 requests / 10 s, "
            f"search {minimal.SEARCH_RATE:g}/s); integration cutoff {meta['cutoff']}; "
            f"invoice sync on; incremental overlap {meta['overlap_s']:g} s.", "",
            f"Latency model: {_latency(meta)}.", "",
            f"Portal: {portal}.", ""]


def _latency(meta: dict[str, Any]) -> str:
    medians = meta.get("latency_ms")
    if not medians:
        return "off (the sandbox answers at once)"
    shown = ", ".join(f"{cls} {ms:g} ms" for cls, ms in medians.items())
    return f"on — medians {shown}; {meta.get('latency_model', '')}"


def _targets(bench: Bench) -> list[str]:
    rows = [(t.phase, t.what, t.measured, _mark(t.met)) for t in bench.targets()]
    return ["## Targets of issue 12", "", *_table(("phase", "target", "measured", ""), rows),
            ""]


def _summary(phase: PhaseResult, f: Figures) -> list[str]:
    rows = [
        ("HubSpot requests", f"{f.requests:,}", f"minimal {f.minimal:,} → {_x(f.request_ratio)}"),
        ("429 responses / 5xx or dropped", f"{f.throttled:,} / {f.failed:,}", "target 0"),
        ("wall time (all steps + report)", _s(f.wall_s),
         f"floor {_s(f.floor.seconds)} → {_x(f.floor_ratio)}"),
        ("rate-limit floor: general / search / last answer / sequential",
         f"{_s(f.floor.general)} / {_s(f.floor.search)} / {f.floor.latency:.2f} s / "
         f"{_s(f.floor.sequential)}",
         "floor = max(general, search) + last answer"),
        ("time: HTTP / rate-limit sleep / ledger / other",
         " / ".join(_s(v) for v in (f.http_s, f.sleep_s, f.db_s, f.other_s)),
         f"sandbox answering: {_s(phase.server_ms / 1000)}"),
        ("ledger rows written (loaded tables)", f"{f.rows_loaded:,}",
         f"+ {f.rows_bookkeeping:,} bookkeeping rows"),
        ("rows/s over the wall time", _n(f.rows_per_s or 0), ""),
        ("rows/s over ledger time", _n(f.rows_per_ledger_s or 0),
         f"{f.db_round_trips:,} round trips to PostgreSQL"),
        ("peak RSS of the sync process", f"{f.peak_rss_mb:,.0f} MB",
         f"{f.start_rss_mb:,.0f} MB after imports"),
        ("sync run", str(phase.sync_run.get("status", "—")),
         str(phase.sync_run.get("message") or phase.worker.get("error") or "")),
    ]
    return _table(("figure", "value", "beside it"), rows)


def _endpoints(phase: PhaseResult) -> list[str]:
    plan = minimal_plan(phase)
    rows = []
    for endpoint in sorted(set(phase.requests) | set(plan)):
        sent = phase.requests.get(endpoint, 0)
        least, why = plan.get(endpoint, (0, "not needed"))
        rows.append((f"`{endpoint}`", f"{sent:,}", f"{least:,}",
                     _x(sent / least if least else None), why))
    rows.append(("**total**", f"**{sum(phase.requests.values()):,}**",
                 f"**{sum(n for n, _ in plan.values()):,}**", "", ""))
    return _table(("endpoint", "requests", "minimal", "ratio", "minimal counted as"), rows)


def _steps(phase: PhaseResult) -> list[str]:
    rows = []
    for step in phase.worker.get("steps", []):
        m = step.get("meter", {})
        counts = ", ".join(f"{k} {v:,}" for k, v in (step.get("counts") or {}).items() if v)
        rows.append((step["step"], _s(step["wall_s"]), f"{int(m.get('http_calls', 0)):,}",
                     _s(m.get("http_s", 0)), _s(m.get("sleep_s", 0)), _s(m.get("db_s", 0)),
                     f"{int(m.get('db_round_trips', 0)):,}",
                     f"{step.get('peak_rss_kb', 0) / 1024:,.0f} MB",
                     step.get("error") or counts or "—"))
    return _table(("step", "wall", "requests", "HTTP", "sleep", "ledger", "round trips",
                   "peak RSS so far", "counts"), rows)


def _rows(phase: PhaseResult) -> list[str]:
    rows = [(t if t in LOADED_TABLES else f"{t} (bookkeeping)", f"{c['inserted']:,}",
             f"{c['updated']:,}", f"{c['deleted']:,}") for t, c in sorted(phase.rows.items())]
    return _table(("table", "inserted", "updated", "deleted"), rows)


def _phase(number: int, phase: PhaseResult) -> list[str]:
    f = figures(phase)
    return [f"## Phase {number}: {phase.title}", "",
            f"What the data asks to read: {phase.reads.describe()}.", "",
            *_summary(phase, f), "", "Requests by endpoint:", "", *_endpoints(phase), "",
            "Where the time went, step by step:", "", *_steps(phase), "",
            "Rows written:", "", *_rows(phase), ""]


def fleet_targets(fleet: dict[str, Any]) -> list[Target]:
    """Issue 12's fleet targets: every portal ≤ 1.5 × its own floor, zero 429, the ledger's
    sessions within the pool."""
    rows = fleet["portals"]
    worst = max(rows, key=lambda r: r["floor_ratio"] or float("inf"), default=None)
    ratio = None if worst is None else worst["floor_ratio"]
    links = fleet["ledger_connections"]
    return [
        Target("fleet", f"every portal's DAG run ≤ 1.5 × its own floor "
                        f"({fleet['integrations']} at once)",
               "n/a" if worst is None or ratio is None else
               f"worst {_x(ratio)} (portal {worst['portal_id']}: {_s(worst['run_wall_s'])} / "
               f"{_s(worst['floor_s'])}); median {_x(fleet['floor_ratio']['median'])}",
               ratio is not None and ratio <= 1.5
               and fleet["runs_succeeded"] == fleet["integrations"]),
        Target("fleet", "zero 429 responses", f"{fleet['throttled']:,}",
               fleet["throttled"] == 0),
        Target("fleet", "ledger connections ≤ the pool",
               f"peak {links['peak']}, pool {links['pool']} (a task takes up to "
               f"{links['connections_per_task']})", links["peak"] <= links["pool"]),
    ]


def _fleet(fleet: dict[str, Any]) -> list[str]:
    links, cpu, quiet = fleet["ledger_connections"], fleet["worker_cpu_s"], fleet["nochange"]
    summary = [
        ("integrations (each its own portal and budget)",
         f"{fleet['integrations']} at `--scale {fleet['scale']}`",
         f"{fleet['executor']}, {fleet['parallelism']} task slots"),
        ("runs succeeded", f"{fleet['runs_succeeded']} / {fleet['integrations']}", ""),
        ("total wall (unpause → last run's end)", _s(fleet["wall_s"]), ""),
        ("DAG run wall ÷ own floor", f"worst {_x(fleet['floor_ratio']['max'])}",
         f"median {_x(fleet['floor_ratio']['median'])}"),
        ("HubSpot requests / 429 / 5xx or dropped",
         f"{fleet['requests']:,} / {fleet['throttled']:,} / {fleet['failed']:,}", "target 0 × 429"),
        ("ledger sessions at peak", str(links["peak"]),
         f"{links['running_tasks_at_peak']} tasks running then; pool {links['pool']}; "
         f"server allows {links['server_max_connections']}"),
        ("worker CPU, the fleet's first runs", _s(cpu["fleet"]),
         f"{_s(cpu['per_full_run'] or 0)} per integration's full run"),
        ("worker CPU, one no-change DAG run (alone)", _s(cpu["nochange_run"]),
         f"{quiet['tasks']} tasks, {_s(quiet['cpu_per_task_s'] or 0)} each; "
         f"{quiet['requests']} HubSpot requests; run wall {_s(quiet['run_wall_s'] or 0)}"),
    ]
    rows = [(r["portal_id"], r["state"], _s(r["started_after_s"] or 0), _s(r["run_wall_s"] or 0),
             _s(r["sync_wall_s"] or 0), _s(r["floor_s"]), _x(r["floor_ratio"]),
             f"{r['requests']:,}", r["throttled"]) for r in fleet["portals"]]
    return [f"## Fleet: {fleet['integrations']} integrations syncing at once through the "
            "scheduler", "",
            "A real Airflow deployment of this checkout (api-server, DAG processor, scheduler "
            "with LocalExecutor, PostgreSQL metadata database; "
            "`tools/hubspot_ledger_tools/deployment.py`); every DAG unpaused in one request, so "
            "their scheduled runs start together, as hourly schedules do on the hour. "
            f"Latency: {fleet['latency']}.", "",
            *_table(("figure", "value", "beside it"), summary), "",
            "Each portal (run wall: the DAG run's start to end in the metadata database; sync "
            "wall: first sync step's start to the last one's end; floor: the portal's own "
            "rate-limit floor, as for the phases above):", "",
            *_table(("portal", "run", "started after", "run wall", "sync wall", "floor",
                     "run ÷ floor", "requests", "429"), rows), ""]


def _parse(parse: dict[str, Any]) -> list[str]:
    bag, built = parse["dagbag"], parse["build_dags"]
    cycle = ([("a parse of `dags/` by the DAG processor: longest file, or the sum over "
               f"{bag['parsing_processes']} parsing processes", f"{bag['cycle_first_s']:.2f} s",
               f"{bag['cycle_median_s']:.2f} s", bag["dags"]),
              (f"the longest of the {bag['files']} DAG files",
               f"{bag['largest_file_first_s']:.2f} s", f"{bag['largest_file_median_s']:.2f} s",
               "")] if "files" in bag else [])
    rows = [*cycle,
            ("`DagBag` of `dags/` (ledger read included), Airflow's per-file figures summed",
             f"{bag['file_first_s']:.2f} s", f"{bag['file_median_s']:.2f} s", bag["dags"]),
            ("`DagBag` of `dags/`, whole constructor", f"{bag['first_s']:.2f} s",
             f"{bag['median_s']:.2f} s", bag["dags"]),
            ("`build_dags` over a fake list (no ledger read)", f"{built['first_s']:.2f} s",
             f"{built['median_s']:.2f} s", built["dags"])]
    return [f"## DAG-file parse with {parse['integrations']:,} integrations", "",
            "In a fresh process with Airflow imported (as the DAG processor parses a file): "
            "the first parse imports the project's modules, later ones find them loaded.", "",
            *_table(("what", "first", "median of the rest", "DAGs"), rows), "",
            *([f"The DAG file failed to load: {bag['error']}. Airflow then has none of the "
               "integrations' DAGs until a parse succeeds.", ""] if bag.get("error") else [])]


METHOD = """## How the figures are made

- **Phases.** Each phase is one DAG run: `sync.runner.run_step` for invoices, products,
  companies, deals (the DAG's order), then `sync.run_report.settle_run`, in a fresh worker
  process (`python -m hubspot_ledger_tools.bench.worker`). Phase 1 is the integration's first run;
  before phase 2, 1% of the qualifying closed-won deals are edited through the sandbox's admin
  API (never logged, never rate limited): half get a new deal name, half a new price on one
  line item; phase 3 follows with no change.
- **Wall time** runs from the first step's start to the end of the report task, inside the
  worker (process start-up and imports are not counted; Airflow's task overhead is not either).
- **Requests** are the sandbox's request log for the phase (admin calls excluded).
- **Minimal requests** come from the portal's data (counted in the sandbox, not from what the
  sync reports): every record the phase must read is read once on the densest endpoint — list
  pages of 100 (products, first run), search pages of 200 (an empty search still costs one
  request), batch reads of 100, v4 association batch reads of 1,000 inputs, and one token
  renewal per 25 minutes of run. A first run reads every product, every qualifying invoice and
  closed-won deal, their line items, and each deal's primary company. An incremental run
  searches each type once for changes (invoices, products, line items, companies, deals; one
  line-item search serves both invoices and deals), follows edited lines to their deals (line →
  deal and line → invoice associations, the deals by id), then reads each changed deal as a first
  run does (associations, primary company, line items). The formula of each endpoint is shown
  beside it.
- **Rate-limit floor** = the time HubSpot's rolling windows need for the minimal requests, plus
  the last answer: general = (⌈N_general / 110⌉ − 1) × 10 s (a rolling window lets a whole
  window's 110 out at once, then 110 more each 10 s), search = (⌈N_search / 5⌉ − 1) × 1 s;
  floor = max(general, search) + the latency model's median of the slowest endpoint class the
  phase uses (0 with latency off). HubSpot counts search apart from the 110/10 s budget, so a
  client that overlaps the two needs the longer of the two times; one that never overlaps them
  needs their sum ("sequential"). Token calls are not counted against either. The sync's own
  budget keeps a margin under these (104 per 10.5 s, 4 per 1.1 s: ratelimit.py), so its best
  possible wall is about 11 % (general-bound) to 37 % (search-bound) above this floor.
- **Latency model** (sandbox `latency.py`, on unless `--no-latency`): each request's answer is
  delayed by a seeded lognormal draw of its endpoint class (token, account, list, batch read,
  search, associations; medians in the header, p99 = 4 × median); the same seed and the same
  request sequence give the same delays.
- **Time split** (worker process, measured at the libraries' doors): HTTP = inside
  `requests.Session.send`; sleep = inside `time.sleep` (the rate limiter's waits and retry
  back-off); ledger = inside `psycopg.Connection.wait` (every round trip to PostgreSQL, the rate
  limiter's budget upserts included); other = the rest (parsing, mapping, Python).
- **Rows written** = PostgreSQL's per-table counters (`pg_stat_user_tables`: inserted + updated
  + deleted) in the loaded tables (items, customers, companies, contracts, obligations,
  invoices and lines, integration records and errors); staging, sync runs, rate buckets and
  tokens are bookkeeping, counted apart. The load target (≥ 20,000 rows/s) is judged over
  ledger time: over wall time a rate-limited sync is bounded by HubSpot, not by the load.
- **Peak RSS** = the worker process's high-water mark, `VmHWM` of `/proc/self/status` (it runs
  nothing but the phase). Not `ru_maxrss`: Linux keeps that across `exec`, so the worker would
  inherit the peak of the harness, which holds the sandbox's whole portal.
"""


def render(bench: Bench) -> str:
    lines = [*_header(bench), *_targets(bench)]
    for number, phase in enumerate(bench.phases, 1):
        lines += _phase(number, phase)
    if bench.fleet:
        lines += _fleet(bench.fleet)
    if bench.parse:
        lines += _parse(bench.parse)
    if bench.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in bench.notes], ""]
    return "\n".join(lines) + "\n" + METHOD


def as_json(bench: Bench) -> dict[str, Any]:
    return {"meta": bench.meta, "portal": bench.portal, "notes": bench.notes,
            "phases": [{**dataclasses.asdict(p), "figures": figures(p).as_dict(),
                        "minimal": {e: {"count": n, "formula": why}
                                    for e, (n, why) in minimal_plan(p).items()}}
                       for p in bench.phases],
            "parse": bench.parse, "fleet": bench.fleet,
            "targets": [dataclasses.asdict(t) for t in bench.targets()]}


def _phase_from(data: dict[str, Any]) -> PhaseResult:
    names = {f.name for f in dataclasses.fields(PhaseResult)}
    fields = {k: v for k, v in data.items() if k in names}
    return PhaseResult(**{**fields, "reads": ReadSet(**data["reads"])})


def load(path: Path) -> Bench:
    """A Bench back from its `report.json` (to render it again)."""
    data = json.loads(path.read_text())
    return Bench(meta=data["meta"], portal=data["portal"], notes=data["notes"],
                 phases=[_phase_from(p) for p in data["phases"]], parse=data["parse"],
                 fleet=data.get("fleet"))


def write(bench: Bench, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md, js = directory / "report.md", directory / "report.json"
    md.write_text(render(bench))
    js.write_text(json.dumps(as_json(bench), indent=1, default=str) + "\n")
    return md, js
