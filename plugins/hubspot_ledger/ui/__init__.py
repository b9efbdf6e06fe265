"""The operator page in Airflow's UI (issue 15 item 3): server-rendered HTML served by a FastAPI
app that the plugin mounts at `/hubspot-ledger`, reached from Airflow's navigation (an external
view that opens it in its own tab). See `hubspot_ledger.ui.app`.

Importing this package is cheap, as `hubspot_ledger.api`'s is: the app is built on its first
request, in the api-server only.
"""

from __future__ import annotations

UI_PREFIX = "/hubspot-ledger"
