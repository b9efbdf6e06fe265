"""Queueing a run of an integration's DAG from inside the api-server.

The api-server owns the metadata DB, so the run is created in-process with the same function
`airflow dags trigger` uses (no HTTP round trip to our own REST API, no second credential). The
run is created QUEUED; the scheduler starts it. Airflow only knows DAGs the DAG processor has
parsed, so an integration created a moment ago may not have one yet.
"""

from __future__ import annotations

from typing import Any

from airflow.api.common.trigger_dag import trigger_dag
from airflow.exceptions import DagNotFound, DagRunAlreadyExists
from airflow.utils.types import DagRunTriggeredByType

from hubspot_ledger.errors import InvalidInput, NotFound, UserFacingError


class RunAlreadyExists(UserFacingError):
    http_status = 409


def queue_run(dag_id: str, *, conf: dict[str, Any], user_name: str) -> tuple[str, str]:
    """Create a queued manual run; returns (run id, state)."""
    try:
        run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.REST_API,
                          triggering_user_name=user_name, conf=conf, logical_date=None)
    except DagNotFound:
        raise NotFound(f"Airflow does not know DAG {dag_id} yet: the DAG processor adds a new "
                       "integration's DAG on its next parse of the dags folder; try again "
                       "in a few minutes") from None
    except DagRunAlreadyExists:
        raise RunAlreadyExists(f"A run of DAG {dag_id} was just queued; try again") from None
    except ValueError as exc:  # a conf the DAG's params refuse, or runs not allowed
        raise InvalidInput(f"Airflow refused to queue a run of {dag_id}: {exc}") from None
    if run is None:
        raise NotFound(f"Airflow did not create a run of DAG {dag_id}")
    return str(run.run_id), str(run.state)
