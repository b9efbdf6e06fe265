"""The benchmark run: set-up, the phases in order, the DAG parse timing, the report.

    python -m hubspot_ledger_tools.bench --scale small --phases full,incremental,nochange
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from hubspot_ledger.config import PROJECT_ROOT, apply_airflow_env_defaults
from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger_tools.bench import census, fleet
from hubspot_ledger_tools.bench.figures import figures
from hubspot_ledger_tools.bench.report import Bench, load, write
from hubspot_ledger_tools.sandbox.latency import MEDIANS_MS, TAIL
from hubspot_ledger_tools.sandbox.testing import SandboxServer

PHASES = {
    "full": "full sync (the integration's first run)",
    "incremental": "incremental sync after editing {percent:g}% of the closed-won deals",
    "nochange": "sync with nothing changed",
    # Its own ledger, portals and Airflow deployment: independent of the phases above.
    "fleet": "a fleet of integrations syncing at once through the scheduler",
}
OVERLAP_ENV = "HUBSPOT_LEDGER_INCREMENTAL_OVERLAP_SECONDS"


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def _phases(text: str) -> list[str]:
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = set(wanted) - set(PHASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase(s): {', '.join(sorted(unknown))} "
                                         f"(phases: {', '.join(PHASES)})")
    ordered = [p for p in PHASES if p in wanted]
    single = [p for p in ordered if p != "fleet"]
    if single and single[0] != "full":
        raise argparse.ArgumentTypeError("the phases start with full: the first run of the "
                                         "integration reads everything")
    return ordered


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hubspot_ledger_tools.bench",
                                     description="Benchmark the HubSpot → ledger sync.")
    parser.add_argument("--scale", default="large",
                        help="sandbox scale: tiny, small, medium, large or a number of deals")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", type=_phases, default=list(PHASES),
                        help="comma-separated, in this order: full,incremental,nochange,fleet")
    parser.add_argument("--cutoff", type=dt.date.fromisoformat, default=dt.date(2020, 1, 1),
                        help="the integration's cutoff date (default: before all sandbox data)")
    parser.add_argument("--change-percent", type=float, default=1.0,
                        help="share of the closed-won deals edited before the incremental run")
    parser.add_argument("--overlap", type=float, default=2.0,
                        help="seconds an incremental run re-reads before the last run "
                             "(the sync's overlap; its production default is 900)")
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True,
                        help="the sandbox answers with HubSpot-like response times (its "
                             "latency model; default on)")
    fleet.add_arguments(parser)
    parser.add_argument("--parse-integrations", type=int, default=2_000,
                        help="integrations for the DAG-file parse timing (0: skip it)")
    parser.add_argument("--database", default="ledger_bench",
                        help="the benchmark's own ledger database (dropped at the end)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench")
    parser.add_argument("--verbose", action="store_true", help="the sync's progress lines too")
    parser.add_argument("--rerender", action="store_true",
                        help="only write report.md again from the report.json in --out")
    return parser.parse_args(argv)


def prepare_environment(args: argparse.Namespace) -> None:
    """Before Airflow is imported: the project's Airflow home, an encryption key for the
    tokens, the incremental overlap, a private DAG-factory cache."""
    apply_airflow_env_defaults()
    os.environ.setdefault(KEYS_ENV, Fernet.generate_key().decode())
    os.environ[OVERLAP_ENV] = str(args.overlap)
    os.environ["HUBSPOT_LEDGER_STATE_DIR"] = tempfile.mkdtemp(prefix="hubspot-bench-")


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True,  # noqa: S603,S607
                              text=True, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "plugins", "dags")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (" + local changes" if dirty
                                                                  else "")


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "scale": args.scale, "seed": args.seed, "cutoff": args.cutoff.isoformat(),
            "phases": args.phases, "change_percent": args.change_percent,
            "overlap_s": args.overlap, "commit": _commit(),
            "latency_ms": dict(MEDIANS_MS) if args.latency else None,
            "latency_model": (f"lognormal per endpoint class, p99 = {TAIL:g} × median, "
                              f"seed {args.seed}") if args.latency else "off",
            "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
                       f"{platform.system()} {platform.machine()}"}


def _reads(name: str, sb: SandboxServer, args: argparse.Namespace) -> census.ReadSet:
    """What the phase must read; for the incremental phase, first make the changes."""
    if name == "full":
        return census.full_read(sb, args.cutoff, sync_invoices=True)
    if name == "nochange":
        return census.nothing_changed(sync_invoices=True)
    changes = census.pick_changes(sb, args.cutoff, args.change_percent, args.seed)
    census.apply_changes(sb, changes)
    print(f"    edited {len(changes):,} deals in the sandbox "
          f"({sum(c.kind == 'line_price' for c in changes):,} through a line's price)")
    time.sleep(args.overlap + 1)  # the next run's overlap must not reach back to the edits
    return census.changed_read(sb, changes, sync_invoices=True)


def run_phases(bench: Bench, sb: SandboxServer, uri: str, integration_id: int,
               args: argparse.Namespace) -> None:
    from hubspot_ledger_tools.bench.phase import run_phase

    for name in (p for p in args.phases if p != "fleet"):
        title = PHASES[name].format(percent=args.change_percent)
        say(f"Phase {len(bench.phases) + 1}: {title}")
        result = run_phase(sb, uri, integration_id, name, title, _reads(name, sb, args),
                           args.verbose, latency_ms=bench.meta.get("latency_ms"),
                           scale=str(args.scale))
        bench.phases.append(result)
        f = figures(result)
        print(f"    {f.requests:,} requests (minimal {f.minimal:,}), {f.throttled} × 429, "
              f"{f.wall_s:,.1f} s (floor {f.floor.seconds:,.1f} s), {f.rows_loaded:,} rows, "
              f"peak RSS {f.peak_rss_mb:,.0f} MB", flush=True)
        if not result.ok:
            bench.notes.append(f"Phase {name} failed: {result.worker.get('error') or ''} "
                               f"{result.sync_run.get('message') or ''}".strip())
            return


def execute(bench: Bench, args: argparse.Namespace) -> None:
    from hubspot_ledger_tools.bench import environment, parse_time

    if any(p != "fleet" for p in args.phases):
        execute_single(bench, args)
    if "fleet" in args.phases:
        execute_fleet(bench, args)
    if args.parse_integrations > 0:
        with environment.bench_ledger(args.database, args.keep_database):
            say(f"DAG-file parse with {args.parse_integrations:,} integrations")
            bench.parse = parse_time.measure(args.parse_integrations)
            print(f"    {bench.parse['dagbag']['file_first_s']:.2f} s (first parse)")


def execute_single(bench: Bench, args: argparse.Namespace) -> None:
    from hubspot_ledger_tools.bench import environment

    with environment.bench_ledger(args.database, args.keep_database) as uri:
        say(f"Ledger database {args.database} migrated; starting the sandbox "
            f"(--scale {args.scale})")
        sb = environment.start_sandbox(args.seed, args.scale, args.latency)
        try:
            bench.portal = census.portal_totals(sb, args.cutoff)
            print(f"    {sb.url}: " + ", ".join(f"{k} {v:,}" for k, v in bench.portal.items()))
            say("Organization, books and OAuth connection (as make demo does)")
            integration_id = environment.connected_integration(sb, args.cutoff)
            run_phases(bench, sb, uri, integration_id, args)
        finally:
            sb.stop()


def execute_fleet(bench: Bench, args: argparse.Namespace) -> None:
    say(f"Fleet: {args.fleet_integrations} integrations at --scale {args.fleet_scale} syncing "
        "at once through the scheduler (LocalExecutor)")
    try:
        bench.fleet = fleet.measure(args)
    except Exception as exc:  # noqa: BLE001 - the other phases' report is still written
        bench.notes.append(f"Phase fleet failed: {type(exc).__name__}: {exc}")
        raise
    f = bench.fleet
    print(f"    {f['runs_succeeded']}/{f['integrations']} runs succeeded in {f['wall_s']:,.1f} s, "
          f"{f['throttled']} × 429, ledger connections at peak "
          f"{f['ledger_connections']['peak']}, worker CPU "
          f"{f['worker_cpu_s']['nochange_run']:,.1f} s per no-change run", flush=True)


def print_targets(bench: Bench) -> None:
    for target in bench.targets():
        print(f"    {'met    ' if target.met else 'NOT MET'}  {target.phase:<11} "
              f"{target.what}: {target.measured}")


def write_report(bench: Bench, out: Path) -> None:
    md, js = write(bench, out)
    say(f"Report: {md} (and {js.name})")


def measure(args: argparse.Namespace) -> Bench:
    """The whole run; the report is written even when it stops half-way."""
    prepare_environment(args)
    bench = Bench(meta=_meta(args), portal={})
    try:
        execute(bench, args)
    finally:
        write_report(bench, args.out)
    return bench


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rerender:
        if not (args.out / "report.json").exists():
            print(f"No report.json in {args.out} to render again")
            return 2
        bench = load(args.out / "report.json")
        write_report(bench, args.out)
    else:
        bench = measure(args)
    print_targets(bench)
    ran = bench.phases or bench.fleet
    fleet_ok = bench.fleet is None or bench.fleet["runs_succeeded"] == bench.fleet["integrations"]
    return 0 if ran and all(p.ok for p in bench.phases) and fleet_ok else 1
