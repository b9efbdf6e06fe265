"""`hubspot-ledger backfill`: an integration's history from its cutoff date to now, loaded
by Airflow in calendar-month windows (issue 15, "backfills that fit").

The CLI asks Airflow for a backfill exactly as `airflow backfill create`, the REST API
(`POST /api/v2/backfills`) and the UI's backfill form do (`airflow.models.backfill`), so every
path creates the same DAG runs: one per window of the DAG's timetable (hubspot_ledger.timetable:
a calendar month, whatever the sync schedule), each reading what HubSpot last modified inside
it (sync.runner; backfill_windows.reach: the cutoff's window also reads everything before it,
the latest one up to now). The scheduler runs them; the CLI follows them until they end.

Before anything is created it refuses, with one line saying what to do, what would otherwise
leave runs queued without a word: an integration whose setup is incomplete, a DAG Airflow has
not parsed yet (or parsed before its timetable had backfill windows), a paused DAG (unless
`--unpause`), and no live scheduler.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubspot_ledger.errors import InvalidInput, NotFound, UserFacingError

# Issue 15: at most about 60 runs for three years. A request that would make more (a --from
# decades back) is refused rather than flooding the scheduler.
MAX_RUNS = 120
POLL_SECONDS = 2.0
FINISHED = ("success", "failed")


class BackfillRefused(UserFacingError):
    http_status = 409


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    run_id: str
    state: str


@dataclass
class Backfill:
    backfill_id: int
    dag_id: str
    windows: list[Window] = field(default_factory=list)

    @property
    def failed(self) -> list[Window]:
        return [w for w in self.windows if w.state == "failed"]

    @property
    def finished(self) -> bool:
        return all(w.state in FINISHED for w in self.windows)


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def start(integration_id: int, *, from_date: dt.date | None = None,
          to_date: dt.date | None = None, unpause: bool = False, max_active_runs: int = 1,
          say: Callable[[str], None] = print) -> Backfill:
    """Check, then ask Airflow for the backfill; returns it with its windows (queued)."""
    from hubspot_ledger.config import prepare_airflow_home
    from hubspot_ledger.integration_settings import validate_setup
    from hubspot_ledger.run_dag import find_dag_id

    integration, _ = validate_setup(integration_id)  # the runs would fail at validate_setup
    begin = _utc_midnight(from_date or integration.cutoff_date)
    end = _utc_midnight(to_date) if to_date else dt.datetime.now(dt.UTC)
    if begin > end:
        raise InvalidInput(f"--from {begin:%Y-%m-%d} is after --to {end:%Y-%m-%d}")
    if max_active_runs < 1:
        raise InvalidInput("--max-active-runs must be 1 or more")
    prepare_airflow_home()
    dag_id = find_dag_id(integration_id)
    _check_dag(dag_id, begin, end, unpause=unpause, say=say)
    return _create(dag_id, begin, end, max_active_runs)


def _check_dag(dag_id: str, begin: dt.datetime, end: dt.datetime, *, unpause: bool,
               say: Callable[[str], None]) -> None:
    from airflow.jobs.job import most_recent_job
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from hubspot_ledger.backfill_windows import backfill_windows
    from hubspot_ledger.timetable import SyncTimetable

    with create_session() as session:
        serialized = session.scalar(SerializedDagModel.latest_item_select_object(dag_id))
        model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
        if serialized is None or model is None:
            raise NotFound(f"Airflow does not know DAG {dag_id} yet: the DAG processor adds a "
                           "new integration's DAG at its next parse of the dags folder (or run "
                           "`airflow dags reserialize`); try again then")
        timetable = serialized.dag.timetable
        # Scheduled on its cron and on its HubSpot changes asset (dag_factory): the cron's
        # timetable makes the backfill's windows.
        timetable = getattr(timetable, "timetable", timetable)
        if not isinstance(timetable, SyncTimetable):
            raise BackfillRefused(
                f"DAG {dag_id} has no schedule Airflow can backfill by month (the integration is "
                "not connected, or the DAG processor has not parsed it since this version was "
                "installed: run `airflow dags reserialize`)")
        count = len(backfill_windows(begin, end, timetable.backfill_months))
        if count > MAX_RUNS:
            raise InvalidInput(f"a backfill from {begin:%Y-%m-%d} would make {count} runs "
                               f"(at most {MAX_RUNS}); choose a later --from")
        if model.is_paused:
            if not unpause:
                raise BackfillRefused(
                    f"DAG {dag_id} is paused, so the backfill's runs would wait queued until "
                    "it is unpaused: unpause it (Airflow UI, or `airflow dags unpause "
                    f"{dag_id}`), or run this again with --unpause")
            session.execute(update(DagModel).where(DagModel.dag_id == dag_id)
                            .values(is_paused=False))
            say(f"unpaused DAG {dag_id}")
        scheduler = most_recent_job("SchedulerJob", session=session)
        if scheduler is None or not scheduler.is_alive():
            raise BackfillRefused("no Airflow scheduler is running, so the backfill's runs would "
                                  "wait queued: start the scheduler (`make airflow`, or "
                                  "`airflow scheduler`), then run this again")


def _create(dag_id: str, begin: dt.datetime, end: dt.datetime, max_active_runs: int
            ) -> Backfill:
    from airflow.exceptions import AirflowException
    from airflow.models.backfill import NoBackfillRunsToCreate, ReprocessBehavior, _create_backfill

    try:
        # What `airflow backfill create` and POST /api/v2/backfills call. A window that failed
        # in an earlier backfill is run again; one that succeeded is not (what it read has
        # not changed since, or its records moved to a later window by their modified date).
        created = _create_backfill(
            dag_id=dag_id, from_date=begin, to_date=end, max_active_runs=max_active_runs,
            reverse=False, dag_run_conf={"full_refresh": False},
            triggering_user_name="hubspot-ledger backfill",
            reprocess_behavior=ReprocessBehavior.FAILED)
    except NoBackfillRunsToCreate:
        raise BackfillRefused(
            f"no complete month between {begin:%Y-%m-%d} and {end:%Y-%m-%d} to backfill: the "
            "next scheduled run reads the current month (or run `hubspot-ledger sync`)") from None
    except (AirflowException, ValueError) as exc:  # another backfill running, a future date…
        raise BackfillRefused(f"Airflow refused the backfill of {dag_id}: {exc}") from None
    return status(int(created.id))


def status(backfill_id: int) -> Backfill:
    """The backfill's windows as Airflow has them now."""
    from airflow.models.backfill import Backfill as AirflowBackfill
    from airflow.models.backfill import BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        backfill = session.get(AirflowBackfill, backfill_id)
        if backfill is None:
            raise NotFound(f"Airflow has no backfill {backfill_id}")
        rows = session.execute(
            select(DagRun.run_id, DagRun.data_interval_start, DagRun.data_interval_end,
                   DagRun.state)
            .join(BackfillDagRun, BackfillDagRun.dag_run_id == DagRun.id)
            .where(BackfillDagRun.backfill_id == backfill_id)
            .order_by(BackfillDagRun.sort_ordinal)).all()
        return Backfill(backfill_id=backfill_id, dag_id=str(backfill.dag_id), windows=[
            Window(start=_aware(r[1]), end=_aware(r[2]), run_id=str(r[0]), state=str(r[3]))
            for r in rows])


def _aware(value: Any) -> dt.datetime:
    when: dt.datetime = value
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def follow(backfill: Backfill, *, say: Callable[[str], None] = print,
           poll_seconds: float = POLL_SECONDS) -> Backfill:
    """Wait until every window has ended, saying each one as it ends."""
    told: set[str] = set()
    while True:
        current = status(backfill.backfill_id)
        for window in current.windows:
            if window.state in FINISHED and window.run_id not in told:
                told.add(window.run_id)
                say(f"{window.start:%Y-%m-%d} → {window.end:%Y-%m-%d}  {window.state}")
        if current.finished:
            return current
        time.sleep(poll_seconds)  # polling Airflow's record of the runs; nothing to wait on
