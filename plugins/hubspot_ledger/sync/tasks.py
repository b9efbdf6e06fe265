"""Task bodies of an integration's DAG: thin calls into the sync layer.

Each takes the integration id (fixed when the DAG is built) and, where useful, the Airflow
context. The sync itself arrives with issue #4; until then the steps log that they are
placeholders, so the DAG runs end to end and its shape can be tested.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

INVOICES_TASK = "sync_invoices"
PRODUCTS_TASK = "sync_products"


def _placeholder(step: str, integration_id: int) -> None:
    log.info("%s for integration %s: not implemented yet (issue #4)", step, integration_id)


def validate_setup(integration_id: int, **_: Any) -> None:
    _placeholder("validate_setup", integration_id)


def refresh_token(integration_id: int, **_: Any) -> None:
    _placeholder("refresh_token", integration_id)


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
