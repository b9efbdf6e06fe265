"""Asking Airflow for a run of an integration's DAG through its asset, from inside the
api-server: the same call Airflow's own `POST /api/v2/assets/events` makes
(`AssetManager.register_asset_change`), in-process, so no second credential is needed.

Airflow records an asset event and queues the DAGs scheduled on the asset (`asset_dag_run_queue`,
one row per DAG however many events arrive); the scheduler then creates one asset-triggered run
per DAG — and, while a run of the DAG is queued or running (`max_active_runs=1`), keeps the
queued event until it has finished. A paused DAG is not queued (its events are recorded only).
"""

from __future__ import annotations

from hubspot_ledger.webhooks.asset import asset_name, asset_uri


def ask_for_run(integration_id: int, events: int) -> bool:
    """Record an event of the integration's asset; False when Airflow does not know the asset
    (its DAG has not been parsed yet)."""
    from airflow.assets.manager import asset_manager
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
    from airflow.utils.session import create_session

    key = SerializedAssetUniqueKey(name=asset_name(integration_id),
                                   uri=asset_uri(integration_id))
    with create_session() as session:
        event = asset_manager.register_asset_change(
            asset=key, extra={"source": "hubspot webhook", "events": events},
            source_is_api=True, session=session)
    return event is not None
