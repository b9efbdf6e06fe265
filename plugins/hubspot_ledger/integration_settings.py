"""An integration's settings (R-SET-1…3): saving them, and the setup check before every run.

Values are typed by people (the endpoints, the CLI): an account code or company name with a
NUL, a lone surrogate or a control character, or longer than any real one, is refused with a
message naming the setting (422 on the endpoints) before anything is looked up or saved.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubspot_ledger.connect import load_integration
from hubspot_ledger.errors import InvalidInput, ReconnectRequired, SetupIncomplete
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import (
    AccountType,
    Integration,
    IntegrationSettings,
    IntegrationStatus,
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


def get_settings(integration_id: int, *, ledger: LedgerHook | None = None
                 ) -> IntegrationSettings:
    ledger = ledger or LedgerHook()
    load_integration(ledger, integration_id)
    return ledger.settings.get(integration_id)


def save_settings(integration_id: int, *, accounts: dict[str, str] | None = None,
                  company: str | None = None, sync_invoices: bool | None = None,
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
    ledger.settings.update(integration_id, values)
    return ledger.settings.get(integration_id)


def missing_settings(settings: IntegrationSettings) -> list[str]:
    """R-SET-3: a setting that is unset or points at a deleted record is missing."""
    missing = [a.label for a in ACCOUNTS if getattr(settings, a.field) is None]
    if settings.company is None:
        missing.append(COMPANY_LABEL)
    return missing


def validate_setup(integration_id: int, *, ledger: LedgerHook | None = None
                   ) -> tuple[Integration, IntegrationSettings]:
    """The first step of every run: connected, and every required setting resolves."""
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
    return integration, settings
