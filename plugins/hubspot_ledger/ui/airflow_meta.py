"""What Airflow knows about an integration's DAG: its schedule, whether it is paused, when it
runs next, and its latest run. Read from Airflow's metadata DB in the api-server process (the
process that owns it), as Airflow's own UI endpoints do; the operator page shows the same values
as the DAG's page in Airflow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DagRunInfo:
    run_id: str
    state: str
    run_after: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None


@dataclass(frozen=True)
class DagInfo:
    dag_id: str
    known: bool  # False: the DAG processor has not parsed it (yet)
    schedule: str | None = None
    schedule_description: str | None = None
    paused: bool = False
    next_run: dt.datetime | None = None
    last_run: DagRunInfo | None = None


def dag_infos(dag_ids: Sequence[str]) -> dict[str, DagInfo]:
    """Airflow's view of each DAG id (unknown DAGs: `known=False`)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    infos = {dag_id: DagInfo(dag_id=dag_id, known=False) for dag_id in dag_ids}
    if not dag_ids:
        return infos
    with create_session() as session:
        for model in session.scalars(select(DagModel).where(DagModel.dag_id.in_(dag_ids))):
            run = session.scalars(select(DagRun).where(DagRun.dag_id == model.dag_id)
                                  .order_by(DagRun.run_after.desc(), DagRun.id.desc())
                                  .limit(1)).first()
            last = None if run is None else DagRunInfo(
                run_id=str(run.run_id), state=str(run.state), run_after=run.run_after,
                start_date=run.start_date, end_date=run.end_date)
            infos[model.dag_id] = DagInfo(
                dag_id=model.dag_id, known=not model.is_stale,
                schedule=model.timetable_summary,
                schedule_description=model.timetable_description,
                paused=bool(model.is_paused),
                next_run=model.next_dagrun_create_after, last_run=last)
    return infos
