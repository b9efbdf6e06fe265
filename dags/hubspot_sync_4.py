"""HubSpot → ledger DAGs of the integrations whose id is 4 modulo 8 (`dag_factory.SHARDS`).
Wiring only: `hubspot_ledger.dag_factory` builds them. The import of `DAG` below is also what
the DAG processor's safe mode looks for."""

from airflow.sdk import DAG

from hubspot_ledger.dag_factory import build_dags

DAGS: dict[str, DAG] = build_dags(shard=4)
globals().update(DAGS)
