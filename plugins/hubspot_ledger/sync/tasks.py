"""Task bodies of an integration's DAG: thin calls into the sync layer.

Each takes the integration id (fixed when the DAG is built) and, where useful, the Airflow
context. The sync itself arrives with issue #4; until then the steps log that they are
placeholders, so the DAG runs end to end and its shape can be tested.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from hubspot_ledger.errors import NotFound, ReconnectRequired, SetupIncomplete, UserFacingError

log = logging.getLogger(__name__)

INVOICES_TASK = "sync_invoices"
PRODUCTS_TASK = "sync_products"


def _placeholder(step: str, integration_id: int) -> None:
    log.info("%s for integration %s: not implemented yet (issue #4)", step, integration_id)


def _fail_without_retry(exc: UserFacingError) -> NoReturn:
    """A person must act (setup, reconnect): retrying would only repeat the failure."""
    from airflow.sdk.exceptions import AirflowFailException

    log.error("%s", exc)
    raise AirflowFailException(str(exc)) from None


def validate_setup(integration_id: int, **_: Any) -> None:
    """R-SET-3: the run stops here with "Setup incomplete: …" when a setting is missing."""
    from hubspot_ledger.integration_settings import validate_setup as check

    try:
        integration, settings = check(integration_id)
    except (SetupIncomplete, ReconnectRequired, NotFound) as exc:
        _fail_without_retry(exc)
    log.info("Setup of integration %s (%s) is complete: portal %s, cutoff %s, invoices %s",
             integration.id, integration.organization_name, integration.remote_id,
             integration.cutoff_date, "on" if settings.sync_invoices else "off")


def refresh_token(integration_id: int, **_: Any) -> None:
    """R-AUTH-6: refresh the access token when it is near expiry, before any sync step."""
    from hubspot_ledger.tokens import IntegrationTokens

    try:
        IntegrationTokens(integration_id).access_token()
    except ReconnectRequired as exc:
        _fail_without_retry(exc)
    log.info("HubSpot access token of integration %s is valid", integration_id)


def choose_invoice_branch(integration_id: int, **_: Any) -> list[str]:
    """R-SYNC-3: with the toggle off, the invoice step is skipped and makes no request."""
    log.info("Invoice sync for integration %s: off (toggle not read yet, issue #4)",
             integration_id)
    return [PRODUCTS_TASK]


def sync_invoices(integration_id: int, **_: Any) -> None:
    _placeholder("sync_invoices", integration_id)


def sync_products(integration_id: int, **_: Any) -> None:
    _placeholder("sync_products", integration_id)


def sync_companies(integration_id: int, **_: Any) -> None:
    _placeholder("sync_companies", integration_id)


def sync_deals(integration_id: int, **_: Any) -> None:
    _placeholder("sync_deals", integration_id)


def report(integration_id: int, **_: Any) -> None:
    _placeholder("report", integration_id)
