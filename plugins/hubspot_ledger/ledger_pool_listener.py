"""Airflow listener of the plugin: whenever a scheduler, DAG processor or triggerer starts, the
`hubspot_ledger` pool exists (`ledger_pool`), so no deployment can leave the DAGs' tasks waiting
forever on a pool nobody created, whatever its init steps were."""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from hubspot_ledger.ledger_pool import POOL_NAME, ensure_pool

log = logging.getLogger(__name__)


@hookimpl
def on_starting(component: Any) -> None:
    """Called as an Airflow job starts (scheduler, DAG processor, triggerer: server processes
    with the metadata database), and as a task starts on a worker (which has none: skipped)."""
    if type(component).__module__ != "airflow.jobs.job":
        return
    try:
        ensure_pool()
    except Exception:  # noqa: BLE001 - a listener must never stop the scheduler from starting
        log.exception("Could not create the Airflow pool %s: the hubspot_ledger DAGs' tasks "
                      "will not be scheduled until it exists (README, \"Pool\")", POOL_NAME)
