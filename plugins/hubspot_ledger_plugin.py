"""The Airflow plugin of this project: the integration endpoints on the api-server.

Airflow imports this module from the plugins folder (`.airflowignore` keeps it from importing
the `hubspot_ledger` package's modules as plugins). It must stay cheap and free of I/O: every
Airflow process that loads plugins imports it, also when the ledger is down. The FastAPI app
itself is built on its first request (see `hubspot_ledger.api`), behind a guard that bounds
every request body and keeps the OAuth code out of the access log (`hubspot_ledger.api.guard`).
Every route but the OAuth callback needs an Airflow user and acts only within that user's
organizations (`hubspot_ledger.api.auth`, `hubspot_ledger.members`). The operator page
(`hubspot_ledger.ui`) is a second app, of HTML pages, reached from the UI's navigation.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from hubspot_ledger import ledger_pool_listener
from hubspot_ledger.api import URL_PREFIX, LazyApp
from hubspot_ledger.timetable import SyncTimetable
from hubspot_ledger.ui import UI_PREFIX


class HubSpotLedgerPlugin(AirflowPlugin):
    name = "hubspot_ledger"
    fastapi_apps = [
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "HubSpot ledger integration"},
        {"app": LazyApp("hubspot_ledger.ui.app"), "url_prefix": UI_PREFIX,
         "name": "HubSpot ledger operator page"},
    ]
    # The operator page in Airflow's navigation, under Browse (hubspot_ledger.ui). No
    # `url_route`: Airflow's UI then opens the page in a tab of its own instead of a sandboxed
    # frame, where neither HubSpot's consent page (the OAuth flow) nor links to HubSpot records
    # could open. (Airflow 3.3's top-level external items render a button that does not
    # navigate; the Browse menu renders a real link.)
    external_views = [
        {"name": "HubSpot ledger", "href": f"{UI_PREFIX}/", "destination": "nav",
         "category": "browse"},
    ]
    # Creates the DAGs' Airflow pool as a scheduler, DAG processor or triggerer starts.
    listeners = [ledger_pool_listener]
    # The integration DAGs' timetable (cron schedule, monthly backfill windows): Airflow finds
    # a custom timetable again among the plugins' when it reads a serialized DAG.
    timetables = [SyncTimetable]
