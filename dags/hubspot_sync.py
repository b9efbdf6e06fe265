"""One HubSpot → ledger DAG per integration. Wiring only: `hubspot_ledger.dag_factory` builds
them. The import of `DAG` below is also what the DAG processor's safe mode looks for."""

from airflow.sdk import DAG

from hubspot_ledger.dag_factory import build_dags

DAGS: dict[str, DAG] = build_dags()
globals().update(DAGS)
