"""`make audit`: the pinned dependency set against a vulnerability database kept offline.

What it checks: every `name==version` pinned in requirements.txt and constraints.txt, against
the PyPA advisory database (github.com/pypa/advisory-database, OSV format, CC-BY-4.0; the data
pip-audit and osv.dev serve for PyPI), a snapshot of which is vendored in
`audit/pypa-advisory-db.json.gz` with the commit and date it was taken at. Nothing is fetched:
the build machines reach no vulnerability service (PyPI's JSON API and osv.dev are not
reachable from them), so a tool that asks one at run time (pip-audit, safety) would check
nothing here.

What it cannot check, and says so in its report: advisories published after the snapshot,
advisories that never reach the PyPA database (some GitHub-only ones), anything not pinned in
those two files (Python itself, the operating system, PostgreSQL, the Airflow image's own
packages), and whether a vulnerable code path is reachable from this project.

Exit status: 0 no pinned version matches an advisory of a snapshot younger than
AUDIT_MAX_AGE_DAYS; 1 some match; 2 UNCHECKED (no database or no pins could be read); 3 STALE
(no match, but the snapshot is older than AUDIT_MAX_AGE_DAYS, default 365: what was published
since is unchecked). `python -m hubspot_ledger_tools.audit refresh --from <checkout>` rebuilds the
snapshot from a checkout of the advisory database (on a machine that reaches GitHub).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from hubspot_ledger.config import PROJECT_ROOT

AUDIT_DIR = PROJECT_ROOT / "audit"
DATABASE = AUDIT_DIR / "pypa-advisory-db.json.gz"
REPORT = AUDIT_DIR / "report.md"
PIN_FILES = (PROJECT_ROOT / "requirements.txt", PROJECT_ROOT / "constraints.txt")
SOURCE = "https://github.com/pypa/advisory-database"
DEFAULT_MAX_AGE_DAYS = 365

OK, VULNERABLE, UNCHECKED, STALE = 0, 1, 2, 3

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503: names that differ only in case and runs of -_. are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- the pinned set -----------------------------------------------------------------------------


@dataclass
class Pins:
    versions: dict[str, str] = field(default_factory=dict)  # normalized name -> version
    names: dict[str, str] = field(default_factory=dict)  # normalized name -> as written
    problems: list[str] = field(default_factory=list)


def read_pins(files: Sequence[Path] = PIN_FILES) -> Pins:
    """Every `name==version` of the files; a name pinned twice to different versions, or a
    requirement that is not pinned exactly, is a problem (the set is then not what is
    audited)."""
    pins = Pins()
    for path in files:
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            match = _PIN.match(line)
            if match is None:
                pins.problems.append(f"{path.name}:{number}: not pinned with == ({line})")
                continue
            name, version = normalize(match.group(1)), match.group(3)
            if name in pins.versions and pins.versions[name] != version:
                pins.problems.append(f"{path.name}:{number}: {match.group(1)} pinned to "
                                     f"{version} here and {pins.versions[name]} elsewhere")
                continue
            pins.versions[name] = version
            pins.names.setdefault(name, match.group(1))
    return pins


# -- the database -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    commit: str
    commit_date: str  # ISO date of the snapshot's commit: nothing published later is in it
    advisories: list[dict[str, Any]]
    extracted_at: str

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.commit_date[:10])


def load_database(path: Path = DATABASE) -> Database:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("source") != SOURCE or not isinstance(data.get("advisories"), list):
        raise ValueError(f"{path} is not a snapshot of {SOURCE}")
    return Database(commit=str(data["commit"]), commit_date=str(data["commit_date"]),
                    advisories=list(data["advisories"]),
                    extracted_at=str(data.get("extracted_at", "")))


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def affects(affected: dict[str, Any], version: str) -> bool | None:
    """Whether one `affected` entry of an OSV advisory covers `version`: listed explicitly, or
    inside an ECOSYSTEM range (events in version order: introduced opens, fixed closes before,
    last_affected closes after). None when the version or a range cannot be compared."""
    if version in affected.get("versions", []):
        return True
    mine = _version(version)
    if mine is None:
        return None
    unreadable = False
    for events in affected.get("ranges", []):
        bounds: list[tuple[Version, str]] = []
        for event in events:
            (kind, value), = event.items()
            bound = Version("0") if kind == "introduced" and value == "0" else _version(value)
            if bound is None:
                unreadable = True
                break
            bounds.append((bound, kind))
        else:
            inside = False
            for bound, kind in sorted(bounds, key=lambda b: (b[0], b[1] != "introduced")):
                if kind == "introduced" and mine >= bound:
                    inside = True
                elif kind == "fixed" and mine >= bound:
                    inside = False
                elif kind == "last_affected" and mine > bound:
                    inside = False
            if inside:
                return True
    return None if unreadable else False


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str


def check(pins: Pins, database: Database) -> tuple[list[Finding], list[str]]:
    """(advisories matching a pinned version, advisories that could not be compared)."""
    by_name: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for advisory in database.advisories:
        if advisory.get("withdrawn"):
            continue
        for affected in advisory.get("affected", []):
            by_name.setdefault(normalize(affected["name"]), []).append((advisory, affected))
    findings: list[Finding] = []
    doubtful: list[str] = []
    for name, version in sorted(pins.versions.items()):
        for advisory, affected in by_name.get(name, []):
            hit = affects(affected, version)
            if hit is None:
                doubtful.append(f"{pins.names[name]}=={version} vs {advisory['id']}")
            elif hit:
                fixed = tuple(value for events in affected.get("ranges", []) for event in events
                              for kind, value in event.items() if kind == "fixed")
                findings.append(Finding(pins.names[name], version, advisory["id"],
                                        tuple(advisory.get("aliases", [])), fixed,
                                        advisory.get("summary", "")))
    return findings, doubtful


# -- the report ---------------------------------------------------------------------------------


def _max_age_days() -> int:
    return int(os.environ.get("AUDIT_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))


def audit(*, database_path: Path = DATABASE, report_path: Path = REPORT,
          pin_files: Sequence[Path] = PIN_FILES, today: dt.date | None = None) -> tuple[int, str]:
    """Check, write the report, return (exit status, one-line result)."""
    today = today or dt.datetime.now(dt.UTC).date()
    lines = ["# Dependency audit", "",
             f"Run on {today.isoformat()} by `make audit` "
             "(`python -m hubspot_ledger_tools.audit`).",
             ""]
    try:
        pins = read_pins(pin_files)
    except OSError as exc:
        return _finish(report_path, lines, UNCHECKED,
                       f"UNCHECKED: the pinned set could not be read ({exc})")
    try:
        database = load_database(database_path)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        return _finish(report_path, lines, UNCHECKED,
                       f"UNCHECKED: no vulnerability database could be read ({exc}); nothing "
                       f"was checked, which says nothing about vulnerabilities")
    if not pins.versions:
        return _finish(report_path, lines, UNCHECKED, "UNCHECKED: no pinned package found in "
                       + " and ".join(p.name for p in pin_files))
    findings, doubtful = check(pins, database)
    age = (today - database.date).days
    live = [a for a in database.advisories if not a.get("withdrawn")]
    window = (f"advisories published up to {database.date.isoformat()} ({age} days before "
              f"this run)")
    if findings:
        status = VULNERABLE
        result = (f"VULNERABLE: {len({(f.package, f.version) for f in findings})} pinned "
                  f"package(s) match {len(findings)} advisory(ies) of the PyPA advisory "
                  f"database ({window})")
    elif age > _max_age_days():
        status = STALE
        result = (f"STALE: no pinned version matches the {window}, but the snapshot is older "
                  f"than {_max_age_days()} days (AUDIT_MAX_AGE_DAYS): everything published "
                  "since is UNCHECKED; refresh audit/pypa-advisory-db.json.gz")
    else:
        status = OK
        result = (f"PASSED for what was checked: no pinned version matches the {window}; "
                  "later advisories are not known to this audit")
    lines += [f"**Result: {result}.**", "", "## What was checked", "",
              f"- **The pinned set**: {len(pins.versions)} packages pinned with `==` in "
              + " and ".join(f"`{p.name}`" for p in pin_files) + " (listed at the end).",
              f"- **Against**: the PyPA advisory database ({SOURCE}, OSV format, CC-BY-4.0), "
              f"snapshot of commit `{database.commit}` dated {database.commit_date} "
              f"(extracted {database.extracted_at or 'at an unknown date'}), vendored in "
              f"`audit/{database_path.name}`: {len(live)} advisories in force "
              f"({len(database.advisories) - len(live)} withdrawn ones ignored), covering "
              f"{len({normalize(a['name']) for v in live for a in v.get('affected', [])})} "
              "PyPI projects.",
              "- **How**: a pinned version is affected when an advisory lists it, or it lies in "
              "one of the advisory's ECOSYSTEM ranges (PEP 440 order), as osv.dev decides.",
              "", "## What was not checked", "",
              f"- Advisories published after {database.date.isoformat()}: this snapshot is "
              f"{age} days old. No vulnerability service is reachable from the build machines "
              "(PyPI's JSON API, osv.dev), so nothing newer could be had offline.",
              "- Advisories that never reach the PyPA database (some appear only in GitHub's "
              "advisory database or vendors' bulletins).",
              "- Anything not pinned in those files: Python itself, the operating system, "
              "PostgreSQL, Redis, the official Airflow image's own packages.",
              "- Whether a vulnerable code path is reachable from this project.", ""]
    if pins.problems:
        lines += ["## Problems with the pinned set", "",
                  *(f"- {p}" for p in pins.problems), ""]
    if findings:
        lines += ["## Findings", "", "| package | pinned | advisory | aliases | fixed in | "
                  "summary |", "|---|---|---|---|---|---|"]
        lines += [f"| {f.package} | {f.version} | [{f.advisory}](https://osv.dev/vulnerability/"
                  f"{f.advisory}) | {', '.join(f.aliases)} | {', '.join(f.fixed) or '—'} | "
                  f"{f.summary.replace('|', '/')} |" for f in findings]
        lines.append("")
    if doubtful:
        lines += ["## Could not be compared (version or range not PEP 440)", "",
                  *(f"- {d}" for d in doubtful), ""]
    lines += ["## The pinned set", "", ", ".join(
        f"{pins.names[n]}=={v}" for n, v in sorted(pins.versions.items())), ""]
    return _finish(report_path, lines, status, result)


def _finish(report_path: Path, lines: list[str], status: int, result: str) -> tuple[int, str]:
    if status == UNCHECKED:
        lines += [f"**Result: {result}.**", ""]
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text("\n".join(lines))
    return status, result


# -- refreshing the snapshot ----------------------------------------------------------------------


def _compact(advisory: dict[str, Any]) -> dict[str, Any]:
    """What the check needs of one OSV advisory (ECOSYSTEM ranges; the explicit versions only
    where no ECOSYSTEM range says it)."""
    details = " ".join(str(advisory.get("summary") or advisory.get("details") or "").split())
    entry: dict[str, Any] = {
        "id": advisory["id"], "aliases": sorted(advisory.get("aliases") or []),
        "summary": details[:200] + ("…" if len(details) > 200 else ""),
        "published": str(advisory.get("published", "")),
        "modified": str(advisory.get("modified", "")), "affected": []}
    if advisory.get("withdrawn"):
        entry["withdrawn"] = str(advisory["withdrawn"])
    for affected in advisory.get("affected") or []:
        package = affected.get("package") or {}
        if package.get("ecosystem") != "PyPI":
            continue
        ranges = [[{k: str(v) for k, v in event.items()} for event in r.get("events", [])]
                  for r in affected.get("ranges") or [] if r.get("type") == "ECOSYSTEM"]
        item: dict[str, Any] = {"name": package["name"], "ranges": ranges}
        if not ranges:
            item["versions"] = [str(v) for v in affected.get("versions") or []]
        entry["affected"].append(item)
    return entry


def refresh(checkout: Path, output: Path = DATABASE, commit: str | None = None,
            commit_date: str | None = None) -> int:
    """Rebuild the snapshot from a checkout of the advisory database (its `vulns/` folder).
    The commit and its date are read from the checkout's git unless given."""
    import yaml

    if commit is None or commit_date is None:
        log = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%H %cI"],  # noqa: S603,S607
                             capture_output=True, text=True, check=True).stdout.split()
        commit, commit_date = commit or log[0], commit_date or log[1]
    advisories = [_compact(yaml.safe_load(path.read_text()))
                  for path in sorted((checkout / "vulns").glob("*/*.yaml"))]
    payload = {"source": SOURCE, "license": "CC-BY-4.0", "commit": commit,
               "commit_date": commit_date,
               "extracted_at": dt.datetime.now(dt.UTC).date().isoformat(),
               "advisories": advisories}
    output.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(output, "wt", encoding="utf-8", compresslevel=9) as handle:
        json.dump(payload, handle, separators=(",", ":"), sort_keys=True)
    return len(advisories)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubspot_ledger_tools.audit",
                                     description="Audit the pinned set offline.")
    verbs = parser.add_subparsers(dest="verb")
    again = verbs.add_parser("refresh", help="rebuild the snapshot from a checkout of "
                             f"{SOURCE}")
    again.add_argument("--from", dest="checkout", type=Path, required=True)
    again.add_argument("--commit")
    again.add_argument("--commit-date")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.verb == "refresh":
        count = refresh(args.checkout, commit=args.commit, commit_date=args.commit_date)
        print(f"{DATABASE}: {count} advisories")
        return 0
    status, result = audit()
    print(f"audit: {result}. Report: {REPORT.relative_to(PROJECT_ROOT)}",
          file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
