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

from hubspot_ledger.api import URL_PREFIX, LazyApp
from hubspot_ledger.timetable import SyncTimetable


class HubSpotLedgerPlugin(AirflowPlugin):
    name = "hubspot_ledger"
    fastapi_apps = [
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "HubSpot ledger integration"},
    ]
    # The integration DAGs' timetable (cron schedule, monthly backfill windows): Airflow finds
    # a custom timetable again among the plugins' when it reads a serialized DAG.
    timetables = [SyncTimetable]
