"""An integration's settings (R-SET-1…3): saving them, and the setup check before every run.

Values are typed by people (the endpoints, the CLI): an account code or company name with a
NUL, a lone surrogate or a control character, or longer than any real one, is refused with a
message naming the setting (422 on the endpoints) before anything is looked up or saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubspot_ledger.connect import load_integration
from hubspot_ledger.errors import InvalidInput, ReconnectRequired, SetupIncomplete
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import (
    WON_ALL_PIPELINES,
    WON_CLOSEDWON,
    AccountType,
    Integration,
    IntegrationSettings,
    IntegrationStatus,
    InvoiceParties,
    Recognition,
    RemoteType,
)
from hubspot_ledger.user_input import text_problem


@dataclass(frozen=True)
class AccountSetting:
    field: str  # attribute of IntegrationSettings and CLI/API name
    column: str
    label: str  # how an accountant calls it
    types: tuple[AccountType, ...]  # account types that make sense for it


# R-SET-1, in its order. An account of the wrong type would post to the wrong side of the books.
ACCOUNTS = (
    AccountSetting("ar_account", "ar_account_id", "accounts-receivable account",
                   (AccountType.ASSET,)),
    AccountSetting("deferred_revenue_account", "deferred_revenue_account_id",
                   "deferred-revenue account", (AccountType.LIABILITY,)),
    AccountSetting("expense_account", "expense_account_id", "expense account",
                   (AccountType.EXPENSE,)),
    AccountSetting("income_account", "income_account_id", "income account",
                   (AccountType.INCOME,)),
    AccountSetting("clearing_account", "clearing_account_id", "clearing account",
                   (AccountType.ASSET, AccountType.LIABILITY)),
)
COMPANY_LABEL = "accounting company"
MAX_ACCOUNT_CODE = 100
MAX_COMPANY_NAME = 200


def _value_problems(accounts: dict[str, str], company: str | None) -> list[str]:
    """What is wrong with the given values as text (see the module's docstring)."""
    labels = {a.field: a.label for a in ACCOUNTS}
    found = [text_problem(code, what=f"the {labels.get(field, field)} code",
                          max_length=MAX_ACCOUNT_CODE) for field, code in accounts.items()]
    if company is not None:
        found.append(text_problem(company, what=f"the {COMPANY_LABEL} name",
                                  max_length=MAX_COMPANY_NAME))
    return [p for p in found if p]


# A HubSpot pipeline stage id: internal names (`closedwon`) or numbers of custom stages.
_STAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
MAX_STAGES = 50


def choice(value: str, kind: type[InvoiceParties] | type[Recognition], option: str) -> str:
    """`value` as one of `kind`'s words, or InvalidInput naming the setting and the choices."""
    word = value.strip().lower()
    if word not in {str(k) for k in kind}:
        # Typed by people: shown only when it is plain and short (user_input.text_problem).
        shown = "" if text_problem(value, what="", max_length=40) else f", not {value!r}"
        raise InvalidInput(f"Settings not saved: {option} must be "
                           f"{' or '.join(str(k) for k in kind)}{shown}")
    return word


def won_stages_value(value: str) -> str:
    """The won-stages setting as saved: `closedwon`, `all-pipelines`, or distinct stage ids
    joined by commas. Whether HubSpot has those stages is checked before every run
    (`check_won_stages`): pipelines change in HubSpot, not here."""
    problem = text_problem(value, what="the won stages", max_length=2000)
    if problem:
        raise InvalidInput(f"Settings not saved: {problem}")
    word = value.strip()
    if word.lower() in (WON_CLOSEDWON, WON_ALL_PIPELINES):
        return word.lower()
    stages = list(dict.fromkeys(s.strip() for s in word.split(",") if s.strip()))
    bad = [s for s in stages if not _STAGE_ID.fullmatch(s)]
    if not stages or bad or len(stages) > MAX_STAGES:
        raise InvalidInput(
            "Settings not saved: won stages must be closedwon, all-pipelines or HubSpot "
            f"stage ids separated by commas (at most {MAX_STAGES})"
            + (f"; {', '.join(repr(b) for b in bad[:3])} is not a stage id" if bad else ""))
    return ",".join(stages)


def _beyond_values(current: IntegrationSettings, invoice_parties: str | None,
                   won_stages: str | None, recognition: str | None) -> dict[str, str]:
    """Issue 14's settings that change, validated."""
    given = {
        "invoice_parties": None if invoice_parties is None
        else choice(invoice_parties, InvoiceParties, "invoice parties"),
        "won_stages": None if won_stages is None else won_stages_value(won_stages),
        "recognition": None if recognition is None
        else choice(recognition, Recognition, "recognition"),
    }
    return {k: v for k, v in given.items() if v is not None and v != str(getattr(current, k))}


# What each of issue 14's settings changes in the ledger: the coverage of that type is dropped
# when it changes, so the next run reads everything that now qualifies (or maps differently)
# instead of only what HubSpot changed since.
COVERAGE_OF = {"invoice_parties": RemoteType.INVOICE, "won_stages": RemoteType.DEAL,
               "recognition": RemoteType.DEAL}


def get_settings(integration_id: int, *, ledger: LedgerHook | None = None
                 ) -> IntegrationSettings:
    ledger = ledger or LedgerHook()
    load_integration(ledger, integration_id)
    return ledger.settings.get(integration_id)


def save_settings(integration_id: int, *, accounts: dict[str, str] | None = None,
                  company: str | None = None, sync_invoices: bool | None = None,
                  invoice_parties: str | None = None, won_stages: str | None = None,
                  recognition: str | None = None,
                  ledger: LedgerHook | None = None) -> IntegrationSettings:
    """Save the given settings; accounts by code and the company by name, in the integration's
    organization. Nothing is saved unless every given value resolves."""
    ledger = ledger or LedgerHook()
    integration = load_integration(ledger, integration_id)
    accounts = {k: v for k, v in (accounts or {}).items() if v is not None}
    by_field = {a.field: a for a in ACCOUNTS}
    unknown_fields = set(accounts) - set(by_field)
    if unknown_fields:
        raise InvalidInput(f"Unknown setting(s): {', '.join(sorted(unknown_fields))}")
    hostile = _value_problems(accounts, company)
    if hostile:
        raise InvalidInput("Settings not saved: " + "; ".join(hostile))
    org = integration.organization_id
    found = ledger.settings.account_types(org, list(accounts.values())) if accounts else {}
    problems: list[str] = []
    values: dict[str, object] = {}
    for field, code in accounts.items():
        setting = by_field[field]
        if code not in found:
            problems.append(f"no account with code {code!r} in organization "
                            f"{integration.organization_name!r} (for the {setting.label})")
            continue
        account_id, account_type = found[code]
        if account_type not in setting.types:
            wanted = " or ".join(t.value for t in setting.types)
            problems.append(f"account {code!r} is of type {account_type.value}, but the "
                            f"{setting.label} must be {wanted}")
            continue
        values[setting.column] = account_id
    if company is not None:
        company_id = ledger.settings.company_id(org, company)
        if company_id is None:
            problems.append(f"no company named {company!r} in organization "
                            f"{integration.organization_name!r}")
        values["company_id"] = company_id
    if problems:
        raise InvalidInput("Settings not saved: " + "; ".join(problems))
    if sync_invoices is not None:
        values["sync_invoices"] = sync_invoices
    beyond = _beyond_values(ledger.settings.get(integration_id), invoice_parties, won_stages,
                            recognition)
    values.update(beyond)
    ledger.settings.update(integration_id, values)
    for remote_type in sorted({COVERAGE_OF[k] for k in beyond}):
        ledger.runs.drop_coverage(integration_id, remote_type.value)
    return ledger.settings.get(integration_id)


def missing_settings(settings: IntegrationSettings) -> list[str]:
    """R-SET-3: a setting that is unset or points at a deleted record is missing."""
    missing = [a.label for a in ACCOUNTS if getattr(settings, a.field) is None]
    if settings.company is None:
        missing.append(COMPANY_LABEL)
    return missing


def validate_setup(integration_id: int, *, ledger: LedgerHook | None = None,
                   won_stages: bool = False) -> tuple[Integration, IntegrationSettings]:
    """The first step of every run: connected, and every required setting resolves.
    `won_stages`: also check an explicit won-stages list against HubSpot's pipelines (one
    request; the run's validate_setup task asks for it)."""
    ledger = ledger or LedgerHook()
    integration = load_integration(ledger, integration_id)
    settings = ledger.settings.get(integration_id)
    missing = missing_settings(settings)
    if integration.status == IntegrationStatus.DISCONNECTED:
        missing.insert(0, "HubSpot is not connected yet")
    if missing:
        raise SetupIncomplete(missing)
    if integration.status != IntegrationStatus.CONNECTED:
        reason = integration.status_message or f"status is {integration.status}"
        raise ReconnectRequired(f"HubSpot is not connected ({reason}): connect HubSpot")
    if won_stages:
        check_won_stages(integration, settings, ledger=ledger)
    return integration, settings


def check_won_stages(integration: Integration, settings: IntegrationSettings, *,
                     ledger: LedgerHook) -> None:
    """Issue 14: every stage id of an explicit won-stages list is a stage of one of HubSpot's
    deal pipelines, else "Setup incomplete: won stage '…' is not a stage of any deal
    pipeline…" (pipelines are edited in HubSpot, so this is checked before every run)."""
    if settings.won_stages in (WON_CLOSEDWON, WON_ALL_PIPELINES):
        return
    from hubspot_ledger.extract.closed_won import resolve_won_stages
    from hubspot_ledger.hooks.hubspot import HubSpotHook
    from hubspot_ledger.tokens import IntegrationTokens

    limiter = ledger.rate_limiter(str(integration.remote_id))
    try:
        hook = HubSpotHook(token_source=IntegrationTokens(integration.id, ledger=ledger),
                           limiter=limiter)
        resolve_won_stages(hook, settings.won_stages)
    finally:
        limiter.close()
