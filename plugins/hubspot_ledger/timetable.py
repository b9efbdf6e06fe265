"""The integration DAGs' timetable: scheduled runs follow the integration's cron, backfill runs
are calendar months (issue 15, "backfills that fit").

Why a timetable, and not a CLI that computes its own windows: Airflow's backfill — the UI's
backfill form, `POST /api/v2/backfills`, `airflow backfill create` — derives one DAG run per
interval the DAG's timetable yields between the two dates (`iter_dagrun_infos_between`, which
asks the timetable with a catch-up restriction), and keeps those whose interval has ended.
With the integration's hourly cron that is 25,585 runs from 2024-01-01. Only the timetable is
seen by every one of those paths, so the coarse windows must come from it; the CLI then simply
asks Airflow for a backfill like the UI does, and both paths create the same runs.

How it tells the two apart: Airflow asks a timetable for the next run with a `TimeRestriction`
whose `catchup` is the DAG's own flag when scheduling (the factory always builds the DAGs with
`catchup=False`), and always `True` for a backfill (models/backfill.py → dag.py
`iter_dagrun_infos_between`, Airflow 3.3). So: not catching up → the cron, exactly as
`CronDataIntervalTimetable` (next run, manual runs, the UI's "next run"); catching up → one
window per calendar month, the first one starting at the month of the requested start date, so
the cutoff date's own month is never skipped. A DAG built with `catchup=True` would therefore
schedule by month: `dag_factory` never does that.

Registered through the plugin (`hubspot_ledger_plugin.py`): Airflow serializes a custom
timetable by its import path and finds it again among the plugins' timetables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable
from pendulum import DateTime

from hubspot_ledger.backfill_windows import DEFAULT_BACKFILL_MONTHS, add_months, month_start


class SyncTimetable(CronDataIntervalTimetable):
    """`CronDataIntervalTimetable(cron)` for scheduled and manual runs; calendar-month windows
    (`backfill_months` of them per run) for backfill runs. See the module's docstring."""

    def __init__(self, cron: str, timezone: str | Any = "UTC", *,
                 backfill_months: int = DEFAULT_BACKFILL_MONTHS) -> None:
        super().__init__(cron, timezone)
        if backfill_months < 1:
            raise ValueError("backfill_months must be 1 or more")
        self.backfill_months = backfill_months

    @property
    def summary(self) -> str:
        return str(self._expression)

    @property
    def description(self) -> str:
        """What the UI shows next to the schedule: the cron's own description, and the
        backfill windows (the backfill form's run count follows them)."""
        cron = self._description or self._expression
        unit = "month" if self.backfill_months == 1 else f"{self.backfill_months} months"
        return f"{cron}; backfills run one {unit} per run"

    @description.setter
    def description(self, value: str) -> None:
        # CronMixin.__init__ assigns the cron's description.
        self._description = value

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), "backfill_months": self.backfill_months}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> SyncTimetable:
        from airflow._shared.timezones.timezone import parse_timezone

        return cls(data["expression"], parse_timezone(data["timezone"]),
                   backfill_months=int(data.get("backfill_months", DEFAULT_BACKFILL_MONTHS)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SyncTimetable):
            return NotImplemented
        return (self._expression, self._timezone, self.backfill_months) == (
            other._expression, other._timezone, other.backfill_months)

    def __hash__(self) -> int:
        return hash((self._expression, str(self._timezone), self.backfill_months))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction: TimeRestriction) -> DagRunInfo | None:
        if not restriction.catchup:
            return super().next_dagrun_info(
                last_automated_data_interval=last_automated_data_interval,
                restriction=restriction)
        return self._backfill_window(last_automated_data_interval, restriction)

    def _backfill_window(self, last: DataInterval | None, restriction: TimeRestriction
                         ) -> DagRunInfo | None:
        if last is None:
            if restriction.earliest is None:
                return None
            start = month_start(restriction.earliest)
        else:
            start = month_start(last.end)
            if start < last.end:  # a window that did not end on a month boundary
                start = add_months(start, 1)
        if restriction.latest is not None and start > restriction.latest:
            return None
        end = add_months(start, self.backfill_months)
        return DagRunInfo.interval(start=_pendulum(start), end=_pendulum(end))


def _pendulum(when: dt.datetime) -> DateTime:
    return DateTime.instance(when)
