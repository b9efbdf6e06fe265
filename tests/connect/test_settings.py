"""Settings and the setup check that starts every run (R-SET-1, R-SET-2, R-SET-3)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from hubspot_ledger.errors import InvalidInput, ReconnectRequired, SetupIncomplete
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import (
    ACCOUNTS,
    get_settings,
    save_settings,
    validate_setup,
)
from hubspot_ledger.load.records import IntegrationStatus

pytestmark = pytest.mark.integration

CODES = {"ar_account": "1100", "deferred_revenue_account": "2400", "expense_account": "5000",
         "income_account": "4000", "clearing_account": "1190"}


def connect(integration_id: int) -> None:
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.CONNECTED)


def test_r_set_2_invoice_sync_defaults_to_off(books: Callable[..., int]) -> None:
    assert get_settings(books()).sync_invoices is False


def test_r_set_1_settings_round_trip_by_code_and_name(books: Callable[..., int]) -> None:
    integration_id = books()
    saved = save_settings(integration_id, accounts=CODES, company="Acme Ltd", sync_invoices=True)
    assert saved.ar_account == "1100" and saved.clearing_account == "1190"
    assert saved.company == "Acme Ltd" and saved.sync_invoices is True
    assert get_settings(integration_id) == saved


@pytest.mark.parametrize("missing", [a.field for a in ACCOUNTS] + ["company"])
def test_r_set_3_each_missing_setting_makes_setup_incomplete(
        books: Callable[..., int], missing: str) -> None:
    integration_id = books()
    save_settings(integration_id, accounts={k: v for k, v in CODES.items() if k != missing},
                  company=None if missing == "company" else "Acme Ltd")
    connect(integration_id)
    with pytest.raises(SetupIncomplete) as err:
        validate_setup(integration_id)
    label = next((a.label for a in ACCOUNTS if a.field == missing), "accounting company")
    assert str(err.value) == f"Setup incomplete: {label}"


def test_r_set_3_complete_setup_passes(books: Callable[..., int]) -> None:
    integration_id = books(configured=True)
    connect(integration_id)
    integration, settings = validate_setup(integration_id)
    assert integration.id == integration_id and settings.income_account == "4000"


def test_r_set_3_a_deleted_account_counts_as_missing(books: Callable[..., int],
                                                      ledger: psycopg.Connection) -> None:
    integration_id = books(configured=True)
    connect(integration_id)
    ledger.execute("DELETE FROM ledger.accounts WHERE code = '2400'")
    with pytest.raises(SetupIncomplete, match="^Setup incomplete: deferred-revenue account$"):
        validate_setup(integration_id)


def test_r_set_3_a_deleted_company_counts_as_missing(books: Callable[..., int],
                                                      ledger: psycopg.Connection) -> None:
    integration_id = books(configured=True)
    connect(integration_id)
    ledger.execute("DELETE FROM ledger.companies WHERE name = 'Acme Ltd'")
    with pytest.raises(SetupIncomplete, match="accounting company"):
        validate_setup(integration_id)


def test_a_never_connected_integration_is_setup_incomplete(books: Callable[..., int]) -> None:
    with pytest.raises(SetupIncomplete, match="^Setup incomplete: HubSpot is not connected yet"):
        validate_setup(books(configured=True))


def test_an_integration_in_error_must_reconnect(books: Callable[..., int]) -> None:
    integration_id = books(configured=True)
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.ERROR,
                                        "HubSpot access was revoked or has expired")
    with pytest.raises(ReconnectRequired, match="reconnect|connect HubSpot"):
        validate_setup(integration_id)


def test_unknown_codes_are_refused_and_nothing_is_saved(books: Callable[..., int]) -> None:
    integration_id = books()
    with pytest.raises(InvalidInput) as err:
        save_settings(integration_id, accounts={**CODES, "income_account": "9999"},
                      company="No Such Co")
    message = str(err.value)
    assert "no account with code '9999'" in message and "income account" in message
    assert "no company named 'No Such Co'" in message
    assert get_settings(integration_id).ar_account is None  # all or nothing


def test_an_account_of_the_wrong_type_is_refused(books: Callable[..., int]) -> None:
    with pytest.raises(InvalidInput, match="'4000' is of type income, but the "
                                           "accounts-receivable account must be asset"):
        save_settings(books(), accounts={"ar_account": "4000"})


def test_settings_only_resolve_inside_the_integrations_organization(
        books: Callable[..., int]) -> None:
    books("Other Org")  # has accounts 1100… and company Acme Ltd too, in another organization
    mine = LedgerHook().integrations.create("Empty Org", __import__("datetime").date(2025, 1, 1))
    with pytest.raises(InvalidInput, match="no account with code '1100' in organization "
                                           "'Empty Org'"):
        save_settings(mine, accounts={"ar_account": "1100"})
    with pytest.raises(InvalidInput, match="no company named 'Acme Ltd'"):
        save_settings(mine, company="Acme Ltd")


# -- issue 13: hostile values are refused by name, before anything is looked up ----------------

@pytest.mark.parametrize(("value", "said"), [
    ("11\x0000", "contains a NUL character"),
    ("\ud83d", "is not valid Unicode (it contains a lone surrogate)"),
    ("1100\r\n", "contains a control character (a line break, tab or escape)"),
    ("1" * 101, "is longer than 100 characters"),
])
def test_a_hostile_account_code_is_refused_naming_the_setting(
        books: Callable[..., int], value: str, said: str) -> None:
    integration_id = books()
    with pytest.raises(InvalidInput) as err:
        save_settings(integration_id, accounts={**CODES, "clearing_account": value},
                      company="Acme Ltd", sync_invoices=True)
    assert str(err.value) == f"Settings not saved: the clearing account code {said}"
    assert get_settings(integration_id).ar_account is None  # all or nothing


def test_a_hostile_company_name_is_refused_and_nothing_is_saved(
        books: Callable[..., int]) -> None:
    integration_id = books()
    with pytest.raises(InvalidInput, match="the accounting company name contains a NUL"):
        save_settings(integration_id, accounts=CODES, company="Acme\x00Ltd")
    with pytest.raises(InvalidInput, match="the accounting company name is not valid Unicode"):
        save_settings(integration_id, company="Acme \udc80")
    assert get_settings(integration_id).company is None


def test_unusual_but_valid_text_still_resolves(books: Callable[..., int],
                                               ledger: psycopg.Connection) -> None:
    """Only what cannot be stored or shown is refused: accents and emoji are fine."""
    integration_id = books()
    org = LedgerHook().integrations.get(integration_id).organization_id
    LedgerHook().settings.create_company(org, "Café Ünïcode 🚀 GmbH", "EUR")
    saved = save_settings(integration_id, company="Café Ünïcode 🚀 GmbH")
    assert saved.company == "Café Ünïcode 🚀 GmbH"
