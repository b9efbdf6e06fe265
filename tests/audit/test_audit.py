"""`make audit` (issue 13, point 6): the pinned set against the vendored PyPA advisory database
snapshot, offline. It finds what the snapshot knows, says exactly what it checked against, and
never reports a pass when it could check nothing."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger_tools import audit

pytestmark = pytest.mark.unit


def pins(tmp_path: Path, *lines: str) -> list[Path]:
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return [path]


def test_an_old_pin_is_found_with_its_advisory(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    status, result = audit.audit(
        report_path=report, today=dt.date(2025, 3, 1),
        pin_files=pins(tmp_path, "# a comment", "requests==2.30.0  # proxy credentials leak",
                       "Jinja2==3.1.6", "apache-airflow[postgres]==3.3.2"))
    assert status == audit.VULNERABLE
    assert result.startswith("VULNERABLE: 1 pinned package(s) match")
    text = report.read_text()
    assert "| requests | 2.30.0 | [PYSEC-2023-74](https://osv.dev/vulnerability/PYSEC-2023-74)" \
        " | CVE-2023-32681, GHSA-j8r2-6x86-q33q | 2.31.0 |" in text
    assert "Jinja2" not in text.split("## Findings")[1].split("## The pinned set")[0]


def test_the_report_names_the_snapshot_and_what_it_cannot_see(tmp_path: Path) -> None:
    database = audit.load_database()
    report = tmp_path / "report.md"
    fresh = database.date + dt.timedelta(days=10)
    status, result = audit.audit(report_path=report, today=fresh,
                                 pin_files=pins(tmp_path, "requests==2.34.2"))
    assert status == audit.OK
    assert result == (f"PASSED for what was checked: no pinned version matches the advisories "
                      f"published up to {database.date} (10 days before this run); later "
                      "advisories are not known to this audit")
    text = report.read_text()
    assert f"snapshot of commit `{database.commit}` dated {database.commit_date}" in text
    assert f"Advisories published after {database.date}" in text
    assert "no vulnerabilities" not in text.lower()


def test_a_stale_snapshot_is_not_a_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    database = audit.load_database()
    later = database.date + dt.timedelta(days=400)
    status, result = audit.audit(report_path=tmp_path / "r.md", today=later,
                                 pin_files=pins(tmp_path, "requests==2.34.2"))
    assert status == audit.STALE and result.startswith("STALE:")
    assert "everything published since is UNCHECKED" in result
    monkeypatch.setenv("AUDIT_MAX_AGE_DAYS", "1000")
    assert audit.audit(report_path=tmp_path / "r.md", today=later,
                       pin_files=pins(tmp_path, "requests==2.34.2"))[0] == audit.OK


def test_without_a_database_nothing_is_claimed(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    status, result = audit.audit(database_path=tmp_path / "missing.json.gz", report_path=report,
                                 pin_files=pins(tmp_path, "requests==2.34.2"))
    assert status == audit.UNCHECKED
    assert result.startswith("UNCHECKED: no vulnerability database could be read")
    assert "nothing was checked" in report.read_text()
    (tmp_path / "junk.json.gz").write_bytes(b"not gzip")
    assert audit.audit(database_path=tmp_path / "junk.json.gz", report_path=report,
                       pin_files=pins(tmp_path, "requests==2.34.2"))[0] == audit.UNCHECKED
    assert audit.audit(report_path=report, pin_files=pins(tmp_path, "# nothing"))[0] == \
        audit.UNCHECKED


def test_inconsistent_or_loose_pins_are_reported(tmp_path: Path) -> None:
    first = tmp_path / "requirements.txt"
    first.write_text("requests==2.34.2\nflask>=2\n")
    second = tmp_path / "constraints.txt"
    second.write_text("Requests==2.33.0\n")
    found = audit.read_pins([first, second])
    assert found.versions == {"requests": "2.34.2"}
    assert found.problems == ["requirements.txt:2: not pinned with == (flask>=2)",
                              "constraints.txt:1: Requests pinned to 2.33.0 here and 2.34.2 "
                              "elsewhere"]


@pytest.mark.parametrize(("version", "expected"), [
    ("0.9", True), ("1.0", False), ("1.5", False), ("2.0", True), ("2.4", True),
    ("2.5", False), ("3.0", True), ("3.2", True), ("3.2.1", False), ("9.9", True)])
def test_osv_ranges(version: str, expected: bool) -> None:
    affected = {"name": "x", "ranges": [
        [{"introduced": "0"}, {"fixed": "1.0"}, {"introduced": "2.0"}, {"fixed": "2.5"}],
        [{"introduced": "3.0"}, {"last_affected": "3.2"}]], "versions": ["9.9"]}
    assert audit.affects(affected, version) is expected


def test_the_pinned_set_of_this_project_is_consistent() -> None:
    assert audit.read_pins().problems == []


def test_make_audit_runs_offline_and_writes_its_report(tmp_path: Path) -> None:
    """The target's command as it is: exit status 0 (passed), 1 (vulnerable) or 3 (stale) —
    never 2: the vendored snapshot is always there."""
    done = subprocess.run([sys.executable, "-m", "hubspot_ledger_tools.audit"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1, 3), done.stderr
    line = (done.stdout or done.stderr).strip()
    assert line.startswith("audit: ") and line.endswith("Report: audit/report.md")
    assert "pypa-advisory-db" in audit.REPORT.read_text()
