"""`hubspot-ledger migrate` and `integration create`, end to end in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import psycopg
import pytest

from hubspot_ledger.config import MIGRATIONS_DIR, PROJECT_ROOT
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load import migrations

from .helpers import connect

pytestmark = pytest.mark.integration

CLI = PROJECT_ROOT / ".venv" / "bin" / "hubspot-ledger"

def run_cli(*args: str, ledger_uri: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: from the repository root, only the connection set."""
    env = {**os.environ, "AIRFLOW_CONN_LEDGER_DEFAULT": ledger_uri}
    return subprocess.run(
        [str(CLI), *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )


def uri_of(database: str) -> str:
    conn = LedgerHook().connection
    return f"postgresql://{conn.login}@{conn.host}:{conn.port}/{database}"


def assert_failed_in_one_line(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("hubspot-ledger")]
    assert len(ours) == 1, result.stderr
    assert re.search(reason, ours[0]), ours[0]
    assert result.stdout == ""


def test_migrate_creates_a_brand_new_database_then_is_up_to_date(new_db_name: str) -> None:
    first = run_cli("migrate", ledger_uri=uri_of(new_db_name))
    assert first.returncode == 0, first.stderr
    # Last line: Airflow's logging also writes to stdout ("Created ledger database …").
    versions = [m.version for m in migrations.discover(MIGRATIONS_DIR)]
    assert first.stdout.splitlines()[-1] == \
        f"applied {len(versions)} migration(s): {', '.join(versions)}"

    second = run_cli("migrate", ledger_uri=uri_of(new_db_name))
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == "ledger schema is up to date"

    with connect(new_db_name) as conn:
        count = conn.execute("SELECT count(*) FROM ledger.schema_migrations").fetchone()
        assert count == (len(versions),)


def test_integration_create_prints_the_new_id_alone(
    ledger_db: str, ledger: psycopg.Connection[Any]
) -> None:
    result = run_cli("integration", "create", "--organization", "Acme", "--cutoff", "2025-01-01",
                     ledger_uri=ledger_db)

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+\n", result.stdout), result.stdout
    row = ledger.execute(
        "SELECT o.name, i.status, i.cutoff_date::text FROM ledger.integrations i "
        "JOIN ledger.organizations o ON o.id = i.organization_id WHERE i.id = %s",
        [int(result.stdout)],
    ).fetchone()
    assert row == ("Acme", "disconnected", "2025-01-01")


def test_integration_create_with_a_bad_date_fails_without_a_traceback(ledger_db: str) -> None:
    result = run_cli("integration", "create", "--organization", "Acme", "--cutoff", "2025-13-01",
                     ledger_uri=ledger_db)
    assert_failed_in_one_line(result, r"not a date \(YYYY-MM-DD\): '2025-13-01'")


def test_integration_create_with_an_empty_name_fails_in_one_line(ledger_db: str) -> None:
    result = run_cli("integration", "create", "--organization", " ", "--cutoff", "2025-01-01",
                     ledger_uri=ledger_db)
    assert_failed_in_one_line(result, "organization name must not be empty")


@pytest.mark.parametrize(
    "args",
    [("migrate",), ("integration", "create", "--organization", "Acme", "--cutoff", "2025-01-01")],
)
def test_an_unreachable_ledger_fails_in_one_line(args: tuple[str, ...]) -> None:
    result = run_cli(*args, ledger_uri="postgresql://postgres@127.0.0.1:1/ledger")
    assert_failed_in_one_line(result, "cannot connect to the ledger .*Connection refused")


def test_integration_create_before_migrate_says_to_migrate(scratch_db: str) -> None:
    result = run_cli("integration", "create", "--organization", "Acme", "--cutoff", "2025-01-01",
                     ledger_uri=uri_of(scratch_db))
    assert_failed_in_one_line(result, "run `hubspot-ledger migrate`")


# -- member add | list | remove (issue 13: tenant authorization as data) ----------------------

def test_member_verbs_manage_who_may_act_on_an_organization(
    ledger_db: str, ledger: psycopg.Connection[Any]
) -> None:
    LedgerHook().integrations.create("Acme Corp", __import__("datetime").date(2025, 1, 1))
    LedgerHook().integrations.create("Beta Org", __import__("datetime").date(2025, 1, 1))

    added = run_cli("member", "add", "--organization", "Acme Corp", "--user", "alice",
                    "--role", "editor", ledger_uri=ledger_db)
    assert added.returncode == 0, added.stderr
    assert added.stdout == "alice is editor of organization Acme Corp\n"
    changed = run_cli("member", "add", "--organization", "Acme Corp", "--user", "alice",
                      "--role", "operator", ledger_uri=ledger_db)
    assert changed.stdout == "alice is now operator of organization Acme Corp\n"
    run_cli("member", "add", "--organization", "Beta Org", "--user", "bob", "--role", "viewer",
            ledger_uri=ledger_db)

    everyone = run_cli("member", "list", ledger_uri=ledger_db)
    assert [line.split() for line in everyone.stdout.splitlines()] == [
        ["Acme", "Corp", "alice", "operator"], ["Beta", "Org", "bob", "viewer"]]
    acme = run_cli("member", "list", "--organization", "Acme Corp", ledger_uri=ledger_db)
    assert [line.split()[-2:] for line in acme.stdout.splitlines()] == [["alice", "operator"]]
    rows = ledger.execute("SELECT username, role FROM ledger.organization_members "
                          "ORDER BY username").fetchall()
    assert rows == [("alice", "operator"), ("bob", "viewer")]

    removed = run_cli("member", "remove", "--organization", "Acme Corp", "--user", "alice",
                      ledger_uri=ledger_db)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "alice is no longer a member of organization Acme Corp\n"
    assert "no members in organization Acme Corp" in run_cli(
        "member", "list", "--organization", "Acme Corp", ledger_uri=ledger_db).stdout
    again = run_cli("member", "remove", "--organization", "Acme Corp", "--user", "alice",
                    ledger_uri=ledger_db)
    assert_failed_in_one_line(again, "'alice' is not a member of organization 'Acme Corp'")


@pytest.mark.parametrize(("args", "reason"), [
    (("member", "add", "--organization", "Nope", "--user", "alice", "--role", "viewer"),
     "There is no organization named 'Nope'"),
    (("member", "add", "--organization", "Acme", "--user", "alice", "--role", "owner"),
     "argument --role: invalid choice: 'owner'"),
    (("member", "add", "--organization", "Acme", "--user", " ", "--role", "viewer"),
     "The user name is empty"),
    (("member", "add", "--organization", "Acme", "--user", "al\x1bice", "--role", "viewer"),
     "The user name contains a control character"),
    (("member", "add", "--organization", "Acme", "--user", "al\udcffice", "--role", "viewer"),
     "The user name is not valid Unicode"),
    (("member", "add", "--organization", "Acme", "--user", "a" * 300, "--role", "viewer"),
     "The user name is longer than 256 characters"),
    (("member", "remove", "--organization", "Acme", "--user", "nobody"),
     "'nobody' is not a member of organization 'Acme'"),
    (("member", "list", "--organization", "Acme\udcff"),
     "The organization name is not valid Unicode"),
], ids=["unknown-org", "bad-role", "blank-user", "escape", "surrogate", "long", "not-a-member",
        "surrogate-org"])
def test_member_verbs_fail_in_one_line(ledger_db: str, ledger: psycopg.Connection[Any],
                                       args: tuple[str, ...], reason: str) -> None:
    LedgerHook().integrations.create("Acme", __import__("datetime").date(2025, 1, 1))
    assert_failed_in_one_line(run_cli(*args, ledger_uri=ledger_db), re.escape(reason))
