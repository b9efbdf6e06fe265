"""An integration's schedule: the cron its DAG runs on (issue 15), set by the CLI
(`hubspot-ledger integration set --schedule`) and the settings endpoint (`schedule`).

The DAG factory reads `integrations.schedule` at every parse, so a saved schedule is the DAG's
at the DAG processor's next parse of the DAGs folder. A schedule is checked before it is saved,
because a schedule Airflow cannot read would take the integration's DAG away at the next parse
(an import error instead of a DAG): only a five-field cron expression or one of Airflow's cron
presets is accepted; anything else is refused with a one-line reason and nothing is saved.
"""

from __future__ import annotations

from typing import Any

import psycopg
from croniter import croniter

from hubspot_ledger.connect import load_integration
from hubspot_ledger.errors import InvalidInput
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.user_input import text_problem

# Airflow's cron presets (airflow.utils.dates.cron_presets); "@once", "@continuous" and the
# like are not schedules a sync can run on.
PRESETS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@quarterly": "0 0 1 */3 *", "@yearly": "0 0 1 1 *"}
MAX_SCHEDULE = 100
EXAMPLE = "e.g. '0 * * * *' (hourly), '30 2 * * *' (daily at 02:30 UTC) or @daily"


def schedule_problem(value: str) -> str | None:
    """What is wrong with `value` as a schedule, or None if Airflow can run on it."""
    hostile = text_problem(value, what="the schedule", max_length=MAX_SCHEDULE)
    if hostile:
        return hostile
    text = value.strip()
    if not text:
        return f"the schedule is empty; give a cron expression ({EXAMPLE})"
    if text.startswith("@"):
        if text not in PRESETS:
            return (f"{text!r} is not a schedule a sync can run on; use a cron expression or "
                    f"one of {', '.join(PRESETS)}")
        return None
    fields = text.split()
    if len(fields) != 5 or not croniter.is_valid(text):
        return (f"{text!r} is not a cron expression: five fields (minute hour day-of-month "
                f"month day-of-week) are expected, {EXAMPLE}")
    return None


def normalized(value: str) -> str:
    """The schedule as stored: one space between fields."""
    text = value.strip()
    return text if text.startswith("@") else " ".join(text.split())


def checked(value: str) -> str:
    """The schedule to store, or InvalidInput (422) saying what is wrong; nothing is saved."""
    problem = schedule_problem(value)
    if problem:
        raise InvalidInput(f"Schedule not saved: {problem}")
    return normalized(value)


def write_schedule(conn: psycopg.Connection[Any], integration_id: int, schedule: str) -> None:
    """Store a checked schedule, in the caller's transaction."""
    conn.execute("UPDATE ledger.integrations SET schedule = %s WHERE id = %s",
                 [schedule, integration_id])


def read_schedule(conn: psycopg.Connection[Any], integration_id: int) -> str | None:
    row = conn.execute("SELECT schedule FROM ledger.integrations WHERE id = %s",
                       [integration_id]).fetchone()
    return None if row is None else str(row[0])


def save_schedule(integration_id: int, schedule: str, *, ledger: LedgerHook | None = None
                  ) -> str:
    """Check and save an integration's schedule; returns it as stored. An unknown integration
    is NotFound (404), a schedule Airflow cannot run on InvalidInput (422)."""
    ledger = ledger or LedgerHook()
    value = checked(schedule)
    load_integration(ledger, integration_id)
    with ledger.session() as conn, conn.transaction():
        write_schedule(conn, integration_id, value)
    return value


def get_schedule(integration_id: int, *, ledger: LedgerHook | None = None) -> str:
    return load_integration(ledger or LedgerHook(), integration_id).schedule
