"""Airflow DAG file: one HubSpot → ledger DAG per integration. Wiring only.

Everything lives in `hubspot_ledger.dag_factory`; this file just exposes the DAGs it builds.
"""

from hubspot_ledger.dag_factory import build_dags

globals().update(build_dags())
