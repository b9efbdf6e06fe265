"""`hubspot-ledger books create|show` (issue 15.6): an accounting company and a starter chart
of accounts, from the package's template or an operator's CSV, so that `settings set` can point
at them for any organization."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hubspot_ledger.books import read_chart, template_chart
from hubspot_ledger.config import PROJECT_ROOT
from hubspot_ledger.errors import InvalidInput
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import ACCOUNTS
from hubspot_ledger.load.records import AccountType

CLI = PROJECT_ROOT / ".venv" / "bin" / "hubspot-ledger"
# What the README's CLI walk-through saves with `settings set`: setting → code.
WALKTHROUGH_CODES = {"ar_account": "1100", "deferred_revenue_account": "2400",
                     "expense_account": "5000", "income_account": "4000",
                     "clearing_account": "1190"}


def run_cli(*args: str, ledger_uri: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW_CONN_LEDGER_DEFAULT": ledger_uri}
    return subprocess.run([str(CLI), *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def accounts_of(ledger: psycopg.Connection[Any], organization: str) -> list[tuple[Any, ...]]:
    return ledger.execute(
        "SELECT a.code, a.name, a.account_type, a.updated_at FROM ledger.accounts a "
        "JOIN ledger.organizations o ON o.id = a.organization_id WHERE o.name = %s "
        "ORDER BY a.code", [organization]).fetchall()


def companies_of(ledger: psycopg.Connection[Any], organization: str) -> list[tuple[Any, ...]]:
    return ledger.execute(
        "SELECT c.name, c.currency, c.updated_at FROM ledger.companies c "
        "JOIN ledger.organizations o ON o.id = c.organization_id WHERE o.name = %s "
        "ORDER BY c.name", [organization]).fetchall()


# -- the chart, as read (unit) -----------------------------------------------------------------

@pytest.mark.unit
def test_the_default_template_has_an_account_of_the_right_type_for_every_setting() -> None:
    chart = {a.code: a.account_type for a in template_chart("default")}
    for setting in ACCOUNTS:
        code = WALKTHROUGH_CODES[setting.field]
        assert chart[code] in setting.types, setting.field
    assert set(chart.values()) == set(AccountType)  # a chart with every side of the books


@pytest.mark.unit
def test_a_csv_chart_is_read_with_its_spreadsheet_quirks() -> None:
    text = "\ufeffCode,Name,Type\n1000,\"Cash, main account\",Asset\n\n2000 , Loans ,liability\n"
    chart = read_chart(text, source="chart.csv")
    assert [(a.code, a.name, a.account_type) for a in chart] == [
        ("1000", "Cash, main account", AccountType.ASSET),
        ("2000", "Loans", AccountType.LIABILITY)]


@pytest.mark.unit
@pytest.mark.parametrize(("text", "message"), [
    ("account,name,type\n1,a,asset\n", "the first line must be the header code,name,type"),
    ("code,name,type\n", "no accounts"),
    ("code,name,type\n1000,Cash,revenue\n",
     "line 2: type 'revenue' is not an account type (asset, liability, equity, income, "
     "expense)"),
    ("code,name,type\n1000,Cash,asset\n1000,Bank,asset\n",
     "line 3: account code '1000' is already on line 2"),
    ("code,name,type\n,Cash,asset\n", "line 2: the account code is empty"),
    ("code,name,type\n1000,,asset\n", "line 2: the account name is empty"),
    ("code,name,type\n1000,Cash\n", "line 2: expected 3 values (code,name,type), found 2"),
    ("code,name,type\n1000,Ca\x1bsh,asset\n",
     "line 2: the account name contains a control character"),
    ("code,name,type\n" + "9" * 101 + ",Cash,asset\n",
     "line 2: the account code is longer than 100 characters"),
])
def test_a_bad_chart_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        read_chart(text, source="chart.csv")
    assert str(refused.value).startswith("chart.csv: nothing was created: ")
    assert message in str(refused.value)


# -- books create / show (integration: the CLI on a real ledger) --------------------------------


@pytest.mark.integration
def test_the_account_types_a_chart_may_use_are_the_ledgers(ledger: psycopg.Connection[Any]
                                                            ) -> None:
    definition = ledger.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.conrelid = 'ledger.accounts'::regclass AND c.contype = 'c' "
        "AND pg_get_constraintdef(c.oid) LIKE '%account_type%'").fetchone()
    assert definition is not None
    assert set(re.findall(r"'(\w+)'::text", definition[0])) == {t.value for t in AccountType}


@pytest.mark.integration
def test_books_create_sets_up_an_organization_then_settings_point_at_its_accounts(
    ledger_db: str, ledger: psycopg.Connection[Any]
) -> None:
    created = run_cli("books", "create", "--organization", "Globex", "--company", "Globex GmbH",
                      "--currency", "eur", ledger_uri=ledger_db)

    assert created.returncode == 0, created.stderr
    template = template_chart("default")
    assert created.stdout.splitlines()[:2] == [
        "organization Globex: company Globex GmbH (EUR) created",
        f"{len(template)} account(s) created: {', '.join(a.code for a in template)}"]
    assert [(c, n) for c, n, _ in companies_of(ledger, "Globex")] == [("Globex GmbH", "EUR")]
    assert [row[:3] for row in accounts_of(ledger, "Globex")] == \
        [(a.code, a.name, a.account_type.value) for a in template]

    # The walk-through's settings now resolve for this organization.
    integration = LedgerHook().integrations.create("Globex", dt.date(2025, 1, 1))
    saved = run_cli("settings", "set", "--integration", str(integration),
                    *[f"--{f.replace('_', '-')}={c}" for f, c in WALKTHROUGH_CODES.items()],
                    "--company", "Globex GmbH", ledger_uri=ledger_db)
    assert saved.returncode == 0, saved.stderr
    assert "company                    Globex GmbH" in saved.stdout
    shown = run_cli("books", "show", "--organization", "Globex", ledger_uri=ledger_db)
    assert shown.stdout.splitlines()[0] == "company  Globex GmbH (EUR)"
    assert "account  4000       income     Revenue" in shown.stdout


@pytest.mark.integration
def test_books_create_twice_changes_nothing_and_says_so(
    ledger_db: str, ledger: psycopg.Connection[Any]
) -> None:
    args = ("books", "create", "--organization", "Acme Corp", "--company", "Acme Ltd",
            "--currency", "USD")
    assert run_cli(*args, ledger_uri=ledger_db).returncode == 0
    accounts, companies = accounts_of(ledger, "Acme Corp"), companies_of(ledger, "Acme Corp")

    again = run_cli(*args, ledger_uri=ledger_db)

    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "organization Acme Corp: company Acme Ltd already exists, kept as it is",
        f"{len(accounts)} account(s) already exist, kept as they are",
        "nothing changed: these books were already set up"]
    # Not even updated_at moved.
    assert accounts_of(ledger, "Acme Corp") == accounts
    assert companies_of(ledger, "Acme Corp") == companies


@pytest.mark.integration
def test_books_from_csv_keep_what_accountants_already_have(
    ledger_db: str, ledger: psycopg.Connection[Any], tmp_path: Path
) -> None:
    run_cli("books", "create", "--organization", "Acme Corp", "--company", "Acme Ltd",
            "--currency", "USD", ledger_uri=ledger_db)
    chart = tmp_path / "chart.csv"
    chart.write_text("code,name,type\n4000,Sales,income\n4100,Subscriptions,income\n")

    result = run_cli("books", "create", "--organization", "Acme Corp", "--company", "Acme Ltd",
                     "--currency", "USD", "--from-csv", str(chart), ledger_uri=ledger_db)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "organization Acme Corp: company Acme Ltd already exists, kept as it is",
        "1 account(s) created: 4100",
        "1 account(s) already exist, kept as they are",
        "  account 4000 is 'Revenue' (income), not 'Sales' (income) as in the chart: "
        "left unchanged"]
    rows = {code: (name, kind) for code, name, kind, _ in accounts_of(ledger, "Acme Corp")}
    assert rows["4000"] == ("Revenue", "income")
    assert rows["4100"] == ("Subscriptions", "income")


@pytest.mark.integration
@pytest.mark.parametrize(("args", "reason"), [
    (("--currency", "DOLLARS"), "Books not created: currency 'DOLLARS' is not an ISO 4217 code"),
    (("--currency", "XYZ"), "Books not created: currency 'XYZ' is not an ISO 4217 code"),
    (("--currency", "USD", "--template", "nope"), "argument --template: invalid choice"),
])
def test_books_create_refuses_bad_values_and_writes_nothing(
    ledger_db: str, ledger: psycopg.Connection[Any], args: tuple[str, ...], reason: str
) -> None:
    result = run_cli("books", "create", "--organization", "Acme Corp", "--company", "Acme Ltd",
                     *args, ledger_uri=ledger_db)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("hubspot-ledger")]
    assert len(ours) == 1 and reason in ours[0], result.stderr
    assert ledger.execute("SELECT count(*) FROM ledger.organizations").fetchone() == (0,)


@pytest.mark.integration
def test_a_bad_csv_creates_nothing_and_names_every_bad_line(
    ledger_db: str, ledger: psycopg.Connection[Any], tmp_path: Path
) -> None:
    chart = tmp_path / "chart.csv"
    chart.write_text("code,name,type\n1000,Cash,asset\n1100,AR,receivable\n1000,Bank,asset\n")
    result = run_cli("books", "create", "--organization", "Acme Corp", "--company", "Acme Ltd",
                     "--currency", "USD", "--from-csv", str(chart), ledger_uri=ledger_db)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"hubspot-ledger: {chart}: nothing was created: line 3: type 'receivable' is not an "
        "account type (asset, liability, equity, income, expense); line 4: account code "
        "'1000' is already on line 2")
    assert ledger.execute("SELECT count(*) FROM ledger.accounts").fetchone() == (0,)
