"""Issue 15: the windows Airflow's backfill derives from an integration DAG's timetable.

`airflow backfill create`, `POST /api/v2/backfills` and the UI's form all create one run per
interval `airflow.models.backfill._get_info_list` returns for the serialized DAG; these tests
call that very function on the DAG the factory builds, serialized and read back as the
scheduler and the api-server read it (the timetable found through the plugin)."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.models.backfill import _get_info_list
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.base import TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable

from hubspot_ledger import dag_factory
from hubspot_ledger.backfill_windows import BEGINNING, backfill_windows, reach
from hubspot_ledger.load.records import IntegrationStatus, IntegrationSummary
from hubspot_ledger.timetable import SyncTimetable

pytestmark = pytest.mark.unit
UTC = dt.UTC


def _serialized_dag(schedule: str = "@hourly") -> object:
    dag = dag_factory.build_dag(IntegrationSummary(
        id=7, organization_id=1, organization_name="Acme", status=IntegrationStatus.CONNECTED,
        schedule=schedule, cutoff_date=dt.date(2024, 1, 1)))
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


@pytest.mark.parametrize("schedule", ["@hourly", "*/5 * * * *", "@daily", "@monthly"])
def test_three_years_of_backfill_are_at_most_60_runs_whatever_the_schedule(
        schedule: str) -> None:
    serialized = _serialized_dag(schedule)
    # Scheduled on its cron and its changes asset (issue 14): the cron's timetable is ours.
    assert isinstance(serialized.timetable.timetable, SyncTimetable)  # type: ignore[attr-defined]
    now = dt.datetime.now(UTC)
    start = now - dt.timedelta(days=3 * 365)
    infos = _get_info_list(from_date=pendulum.instance(start), to_date=pendulum.instance(now),
                           reverse=False, dag=serialized)  # type: ignore[arg-type]
    assert 35 <= len(infos) <= 37 <= 60
    intervals = [(i.data_interval.start, i.data_interval.end) for i in infos]
    # Calendar months, back to back, from the month of the start date, all ended.
    assert intervals[0][0] == dt.datetime(start.year, start.month, 1, tzinfo=UTC)
    for (_, end), (following, _) in zip(intervals, intervals[1:], strict=False):
        assert end == following
    assert all(s.day == 1 and e.day == 1 and s.time() == e.time() == dt.time() for s, e in
               intervals)
    assert intervals[-1][1] <= now < intervals[-1][1] + dt.timedelta(days=31)
    assert intervals == backfill_windows(start, now)[:-1]  # the open month is left out


def test_scheduled_runs_follow_the_cron() -> None:
    """Not catching up (the DAGs are built with catchup=False): exactly the cron's runs."""
    ours = SyncTimetable("15 */2 * * *")
    cron = CronDataIntervalTimetable("15 */2 * * *", "UTC")
    restriction = TimeRestriction(pendulum.datetime(2020, 1, 1), None, catchup=False)
    last = cron.infer_manual_data_interval(run_after=pendulum.now("UTC").subtract(hours=5))
    for previous in (None, last):
        assert ours.next_dagrun_info(last_automated_data_interval=previous,
                                     restriction=restriction) == \
            cron.next_dagrun_info(last_automated_data_interval=previous,
                                  restriction=restriction)
    when = pendulum.now("UTC")
    assert ours.infer_manual_data_interval(run_after=when) == \
        cron.infer_manual_data_interval(run_after=when)
    assert not _serialized_dag().catchup  # type: ignore[attr-defined]


def test_the_timetable_round_trips_through_airflow_serialization() -> None:
    outer = _serialized_dag("30 2 * * *").timetable  # type: ignore[attr-defined]
    assert type(outer) is AssetOrTimeSchedule
    assert outer.summary == "Asset or 30 2 * * *"
    assert outer.asset_condition.name == "hubspot_changes__integration_7"
    timetable = outer.timetable
    assert timetable == SyncTimetable("30 2 * * *")
    assert timetable.summary == "30 2 * * *"
    assert timetable.description.endswith("backfills run one month per run")


def test_the_cutoffs_window_reads_from_the_beginning_and_the_latest_up_to_now() -> None:
    now = dt.datetime(2026, 12, 2, 15, tzinfo=UTC)
    jan, feb, mar = (dt.datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3))
    assert reach((jan, feb), dt.date(2024, 1, 1), now) == (BEGINNING, feb)
    assert reach((jan, feb), dt.date(2024, 1, 15), now) == (BEGINNING, feb)
    assert reach((feb, mar), dt.date(2024, 1, 1), now) == (feb, mar)
    nov, dec = dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2026, 12, 1, tzinfo=UTC)
    assert reach((nov, dec), dt.date(2024, 1, 1), now) == (nov, None)
    oct_ = dt.datetime(2026, 10, 1, tzinfo=UTC)
    assert reach((oct_, nov), dt.date(2024, 1, 1), now) == (oct_, nov)
    # February is short: on March 1st, January's window does not reach now, February's does.
    march_first = dt.datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    jan26, feb26 = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 2, 1, tzinfo=UTC)
    assert reach((jan26, feb26), dt.date(2024, 1, 1), march_first) == (jan26, feb26)
    assert reach((feb26, dt.datetime(2026, 3, 1, tzinfo=UTC)), dt.date(2024, 1, 1),
                 march_first)[1] is None
