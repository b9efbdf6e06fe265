"""Books for a standalone ledger: an organization's accounting company and a starter chart of
accounts (`hubspot-ledger books create`).

The accounting product owns accounts and companies; a ledger run without it still needs them
before an integration's settings can point at them (R-SET-1). A chart comes from a template
shipped as package data (`data/books/<name>.csv`) or from an operator's CSV with the same
columns (`code,name,type`), validated before anything is written. Creating books is
idempotent: what exists (an account code, a company name) is kept as it is, never changed,
and the result says what was created and what was already there.

SQL lives here, on a psycopg connection the caller owns (the ledger hook is not extended).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import psycopg

from hubspot_ledger.errors import InvalidInput
from hubspot_ledger.load.errors import LedgerSchemaError, first_line
from hubspot_ledger.load.records import AccountType
from hubspot_ledger.maps import currency_minor_units
from hubspot_ledger.user_input import text_problem

COLUMNS = ("code", "name", "type")
MAX_CODE = 100  # as integration_settings.MAX_ACCOUNT_CODE: a code settings can name
MAX_NAME = 200
MAX_ACCOUNTS = 5000
_TEMPLATES = files("hubspot_ledger") / "data" / "books"


@dataclass(frozen=True)
class ChartAccount:
    code: str
    name: str
    account_type: AccountType


@dataclass
class BooksResult:
    organization: str
    company: str
    currency: str
    company_created: bool
    created: list[ChartAccount] = field(default_factory=list)
    existing: list[ChartAccount] = field(default_factory=list)  # as the ledger has them
    # Accounts whose code exists with another name or type than the chart's (kept as they are).
    differing: list[tuple[ChartAccount, ChartAccount]] = field(default_factory=list)
    company_currency: str | None = None  # the existing company's, when it differs

    @property
    def changed(self) -> bool:
        return self.company_created or bool(self.created)


def template_names() -> list[str]:
    return sorted(p.name.removesuffix(".csv") for p in _TEMPLATES.iterdir()
                  if p.name.endswith(".csv"))


def template_chart(name: str) -> list[ChartAccount]:
    if name not in template_names():
        raise InvalidInput(f"no chart template named {name!r} (there are: "
                           f"{', '.join(template_names())})")
    return read_chart((_TEMPLATES / f"{name}.csv").read_text(encoding="utf-8"),
                      source=f"template {name!r}")


def read_chart(text: str, *, source: str) -> list[ChartAccount]:
    """A chart of accounts from CSV text (`code,name,type`, a header line first), every row
    checked: a code and a name (printable, not too long), a type the ledger's accounts table
    accepts, no code twice. Every problem is named with its line; nothing is returned
    unless the whole file is valid."""
    text = text.removeprefix("\ufeff")  # a spreadsheet's byte-order mark
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != list(COLUMNS):
        raise InvalidInput(f"{source}: nothing was created: the first line must be the header "
                           f"{','.join(COLUMNS)}")
    problems: list[str] = []
    chart: list[ChartAccount] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(chart) >= MAX_ACCOUNTS:
            problems.append(f"more than {MAX_ACCOUNTS} accounts")
            break
        account, problem = _account(row, seen, line)
        if problem:
            problems.append(f"line {line}: {problem}")
        elif account is not None:
            seen[account.code] = line
            chart.append(account)
    if not chart and not problems:
        problems.append("no accounts")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more"
                                            if len(problems) > 10 else "")
        raise InvalidInput(f"{source}: nothing was created: {shown}")
    return chart


def _account(row: list[str], seen: dict[str, int], line: int
             ) -> tuple[ChartAccount | None, str | None]:
    if len(row) != len(COLUMNS):
        return None, f"expected {len(COLUMNS)} values ({','.join(COLUMNS)}), found {len(row)}"
    code, name, kind = (cell.strip() for cell in row)
    for value, what, limit in ((code, "the account code", MAX_CODE),
                               (name, "the account name", MAX_NAME)):
        if not value:
            return None, f"{what} is empty"
        problem = text_problem(value, what=what, max_length=limit)
        if problem:
            return None, problem
    if code in seen:
        return None, f"account code {code!r} is already on line {seen[code]}"
    types = [t.value for t in AccountType]
    if kind.lower() not in types:
        shown = kind if text_problem(kind, what="", max_length=40) is None else "…"
        return None, f"type {shown!r} is not an account type ({', '.join(types)})"
    return ChartAccount(code, name, AccountType(kind.lower())), None


def check_company(company: str, currency: str) -> tuple[str, str]:
    """The company's name and currency as they will be stored, or InvalidInput saying why."""
    name = company.strip()
    problem = "the company name is empty" if not name else \
        text_problem(name, what="the company name", max_length=MAX_NAME)
    code = currency.strip().upper()
    if problem is None and (not re.fullmatch(r"[A-Z]{3}", code)
                            or code not in currency_minor_units()):
        shown = code if re.fullmatch(r"[A-Z0-9]{1,10}", code) else "…"
        problem = f"currency {shown!r} is not an ISO 4217 code (e.g. USD, EUR)"
    if problem:
        raise InvalidInput(f"Books not created: {problem}")
    return name, code


def create_books(conn: psycopg.Connection[Any], organization: str, company: str,
                 currency: str, chart: list[ChartAccount]) -> BooksResult:
    """Create the organization (if new), its accounting company and the chart's accounts, in
    one transaction; what exists is kept unchanged. Safe to run twice, or twice at once."""
    org_name = organization.strip()
    problem = "the organization name is empty" if not org_name else \
        text_problem(org_name, what="the organization name", max_length=MAX_NAME)
    if problem:
        raise InvalidInput(f"Books not created: {problem}")
    company, currency = check_company(company, currency)
    try:
        with conn.transaction():
            org_id = _organization(conn, org_name)
            result = BooksResult(org_name, company, currency,
                                 company_created=_company(conn, org_id, company, currency))
            if not result.company_created:
                stored = _company_currency(conn, org_id, company)
                result.company_currency = stored if stored != currency else None
            _accounts(conn, org_id, chart, result)
            return result
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
        raise LedgerSchemaError(f"the ledger schema is missing or out of date "
                                f"({first_line(exc)}); run `hubspot-ledger migrate`") from exc


def _organization(conn: psycopg.Connection[Any], name: str) -> int:
    # DO NOTHING + SELECT: a concurrent creator's row is read, not a unique-name failure.
    conn.execute("INSERT INTO ledger.organizations (name) VALUES (%s) "
                 "ON CONFLICT (name) DO NOTHING", [name])
    row = conn.execute("SELECT id FROM ledger.organizations WHERE name = %s", [name]).fetchone()
    assert row is not None  # inserted or already there, in this transaction
    return int(row[0])


def _company(conn: psycopg.Connection[Any], org_id: int, name: str, currency: str) -> bool:
    row = conn.execute(
        "INSERT INTO ledger.companies (organization_id, name, currency) VALUES (%s, %s, %s) "
        "ON CONFLICT (organization_id, name) DO NOTHING RETURNING id",
        [org_id, name, currency]).fetchone()
    return row is not None


def _company_currency(conn: psycopg.Connection[Any], org_id: int, name: str) -> str | None:
    row = conn.execute("SELECT currency FROM ledger.companies WHERE organization_id = %s "
                       "AND name = %s", [org_id, name]).fetchone()
    return None if row is None else row[0]


def _accounts(conn: psycopg.Connection[Any], org_id: int, chart: list[ChartAccount],
              result: BooksResult) -> None:
    for account in chart:
        row = conn.execute(
            "INSERT INTO ledger.accounts (organization_id, code, name, account_type) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (organization_id, code) DO NOTHING "
            "RETURNING id", [org_id, account.code, account.name, account.account_type.value]
        ).fetchone()
        if row is not None:
            result.created.append(account)
            continue
        stored = conn.execute(
            "SELECT code, name, account_type FROM ledger.accounts "
            "WHERE organization_id = %s AND code = %s", [org_id, account.code]).fetchone()
        assert stored is not None
        kept = ChartAccount(stored[0], stored[1], AccountType(stored[2]))
        result.existing.append(kept)
        if kept != account:
            result.differing.append((account, kept))


def list_books(conn: psycopg.Connection[Any], organization: str
               ) -> tuple[list[tuple[str, str | None]], list[ChartAccount]]:
    """An organization's companies (name, currency) and accounts, by name and code."""
    row = conn.execute("SELECT id FROM ledger.organizations WHERE name = %s",
                       [organization.strip()]).fetchone()
    if row is None:
        raise InvalidInput(f"There is no organization named {organization.strip()!r}")
    companies = conn.execute(
        "SELECT name, currency FROM ledger.companies WHERE organization_id = %s "
        "AND NOT is_placeholder ORDER BY name", [row[0]]).fetchall()
    accounts = conn.execute(
        "SELECT code, name, account_type FROM ledger.accounts WHERE organization_id = %s "
        "ORDER BY code", [row[0]]).fetchall()
    return ([(c[0], c[1]) for c in companies],
            [ChartAccount(a[0], a[1], AccountType(a[2])) for a in accounts])
