"""The Airflow pool that bounds ledger connections across the whole deployment (issue 11).

Every task of every integration's DAG holds ledger connections while it runs, and a deployment
may carry hundreds of DAGs: without a bound, a burst of scheduled runs would exhaust the ledger
server's `max_connections` and fail every client of the ledger at once. Each task runs in the
`hubspot_ledger` pool and takes as many slots as the connections it holds, so the pool's size is
the number of ledger connections the DAGs may hold together.

A missing pool is not harmless in Airflow 3.3: the scheduler logs "Tasks using non-existent pool
'hubspot_ledger' will not be scheduled" and leaves the tasks `scheduled` until the DAG run time-out
fails the run (hours). So the pool is created wherever Airflow starts: by the project's Airflow
home set-up (`config.prepare_airflow_home`), and by the plugin's listener whenever a scheduler,
DAG processor or triggerer starts (`ledger_pool_listener`), which covers any deployment that
loads the plugin whatever its init steps. Deployments may also create it themselves
(`airflow pools set hubspot_ledger 50 "…"`, README "Pool").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hubspot_ledger.sync.tasks import DEALS_TASK

log = logging.getLogger(__name__)

POOL_NAME = "hubspot_ledger"
SLOTS_ENV = "HUBSPOT_LEDGER_POOL_SLOTS"

# Slots per task = the most ledger connections it holds at once (tests/sync/
# test_ledger_connections.py samples a real run and holds every task to its slots). Every task
# holds its run's liveness lock on a connection of its own (sync.runner.attend) and works on its
# hook's connection. A sync step adds the connection holding the integration's write lock (it
# writes through it) and the portal rate limiter's while it reads HubSpot; the deals step also
# reads the staged deals through one more, in its read-ahead thread.
LIGHT_STEP_SLOTS = 2
SYNC_STEP_SLOTS = 4
DEALS_STEP_SLOTS = 5

# 50 slots = 10 deals steps, or 12 other sync steps, at once. PostgreSQL's default
# max_connections is 100 with 3 kept for superusers, so about 47 stay free for the api-server's
# endpoints, the DAG processor's parse-time read, the CLI and migrations. A ledger server with
# another max_connections: about half of it.
DEFAULT_SLOTS = 50


def task_slots(task_id: str, sync_step: bool) -> int:
    """The slots a task of the DAG takes: the connections it may hold at once."""
    if task_id == DEALS_TASK:
        return DEALS_STEP_SLOTS
    return SYNC_STEP_SLOTS if sync_step else LIGHT_STEP_SLOTS


DESCRIPTION = ("Ledger connections held by the hubspot_ledger DAGs' tasks (a sync step takes 4 "
               "slots, the deals step 5, the other steps 2); size it to about half the "
               "ledger's max_connections")


def pool_slots() -> int:
    """The pool's size: HUBSPOT_LEDGER_POOL_SLOTS, or the default above."""
    raw = os.environ.get(SLOTS_ENV, "").strip()
    if not raw:
        return DEFAULT_SLOTS
    try:
        slots = int(raw)
    except ValueError:
        raise ValueError(f"{SLOTS_ENV} must be a whole number of slots, not {raw!r}") from None
    if slots < DEALS_STEP_SLOTS and slots != -1:  # -1 is Airflow's "unbounded"
        raise ValueError(f"{SLOTS_ENV}={slots} is too small: the deals step needs "
                         f"{DEALS_STEP_SLOTS} slots (or -1 for no bound)")
    return slots


def ensure_pool() -> str:
    """Create the pool if Airflow's metadata database lacks it. An existing pool keeps the size
    an operator gave it (Admin → Pools, `airflow pools set`) unless HUBSPOT_LEDGER_POOL_SLOTS is
    set, which then wins. Returns what was done: "created", "resized" or "kept".

    Needs Airflow's metadata database (server processes and the CLI, never task code)."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session
    from sqlalchemy.exc import IntegrityError

    slots = pool_slots()
    try:
        with create_session() as session:
            pool = Pool.get_pool(POOL_NAME, session=session)
            if pool is not None and (SLOTS_ENV not in os.environ or pool.slots == slots):
                return "kept"
            Pool.create_or_update_pool(POOL_NAME, slots, DESCRIPTION, include_deferred=False,
                                       session=session)
    except IntegrityError:
        # The scheduler and the DAG processor starting together: the other one created it.
        if Pool.get_pool(POOL_NAME) is None:
            raise
        return "kept"
    done = "created" if pool is None else "resized"
    log.info("Airflow pool %s %s with %d slots", POOL_NAME, done, slots)
    return done


def ensure_pool_once(home: Path) -> None:
    """`ensure_pool` for the project's Airflow home, once per home and pool size (a stamp file),
    so that later set-ups stay instant; the listener covers a pool deleted since."""
    stamp = home / ".pool"
    wanted = f"{POOL_NAME} {os.environ.get(SLOTS_ENV, '').strip() or 'default'}\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    ensure_pool()
    stamp.write_text(wanted)
