"""Running one integration's DAG to completion in this process (`hubspot-ledger sync`, demo).

Uses Airflow's own `dag.test()`: a real DAG run recorded in the metadata DB, tasks executed
in-process in their fixed order, no scheduler needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hubspot_ledger.config import PROJECT_ROOT, prepare_airflow_home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def find_dag_id(integration_id: int) -> str:
    from hubspot_ledger.dag_factory import dag_id_for
    from hubspot_ledger.hooks.ledger import LedgerHook

    for summary in LedgerHook().list_integrations():
        if summary.id == integration_id:
            return dag_id_for(summary)
    from hubspot_ledger.errors import NotFound

    raise NotFound(f"Integration {integration_id} does not exist")


def run_integration_dag(integration_id: int, *, full_refresh: bool = False) -> RunResult:
    prepare_airflow_home()
    from airflow.dag_processing.dagbag import DagBag

    dag_id = find_dag_id(integration_id)
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if dag_id not in bag.dags:
        errors = "; ".join(f"{k}: {v.splitlines()[-1]}" for k, v in bag.import_errors.items())
        raise RuntimeError(f"DAG {dag_id} was not built{': ' + errors if errors else ''}")
    run = bag.dags[dag_id].test(logical_date=None, run_conf={"full_refresh": full_refresh})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return RunResult(dag_id=dag_id, run_id=str(run.run_id), state=str(run.state),
                     task_states=states)
