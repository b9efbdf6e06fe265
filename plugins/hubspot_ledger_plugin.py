"""The Airflow plugin of this project: the integration endpoints on the api-server.

Airflow imports this module from the plugins folder (`.airflowignore` keeps it from importing
the `hubspot_ledger` package's modules as plugins). It must stay cheap and free of I/O: every
Airflow process that loads plugins imports it, also when the ledger is down. The FastAPI app
itself is built on its first request (see `hubspot_ledger.api`), behind a guard that bounds
every request body and keeps the OAuth code out of the access log (`hubspot_ledger.api.guard`).
Every route but the OAuth callback needs an Airflow user and acts only within that user's
organizations (`hubspot_ledger.api.auth`, `hubspot_ledger.members`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from hubspot_ledger import ledger_pool_listener
from hubspot_ledger.api import URL_PREFIX, LazyApp


class HubSpotLedgerPlugin(AirflowPlugin):
    name = "hubspot_ledger"
    fastapi_apps = [
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "HubSpot ledger integration"},
    ]
    # Creates the DAGs' Airflow pool as a scheduler, DAG processor or triggerer starts.
    listeners = [ledger_pool_listener]
