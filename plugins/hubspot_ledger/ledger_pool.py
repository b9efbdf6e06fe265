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
(`airflow pools set hubspot_ledger 48 "…"`, README "Pool").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

POOL_NAME = "hubspot_ledger"
SLOTS_ENV = "HUBSPOT_LEDGER_POOL_SLOTS"

# Slots per task = the ledger connections it holds while it runs. A sync step holds three: its
# run's liveness lock, the connection holding the integration's write lock (it writes through
# it), and the portal rate limiter's while it reads HubSpot; short reads open and close one more.
# The light steps (setup check, token, branch, report) hold their liveness lock and read briefly.
SYNC_STEP_SLOTS = 3
LIGHT_STEP_SLOTS = 1

# 48 slots = at most 16 sync steps at once (16 × 3 connections). PostgreSQL's default
# max_connections is 100 with 3 kept for superusers, so about 49 stay free for the short reads
# of those steps, the api-server's endpoints, the DAG processor's parse-time read, the CLI and
# migrations. A ledger server with another max_connections: about half of it.
DEFAULT_SLOTS = 48

DESCRIPTION = ("Ledger connections held by the hubspot_ledger DAGs' tasks (a sync step takes 3 "
               "slots, the other steps 1); size it to about half the ledger's max_connections")


def pool_slots() -> int:
    """The pool's size: HUBSPOT_LEDGER_POOL_SLOTS, or the default above."""
    raw = os.environ.get(SLOTS_ENV, "").strip()
    if not raw:
        return DEFAULT_SLOTS
    try:
        slots = int(raw)
    except ValueError:
        raise ValueError(f"{SLOTS_ENV} must be a whole number of slots, not {raw!r}") from None
    if slots < SYNC_STEP_SLOTS and slots != -1:  # -1 is Airflow's "unbounded"
        raise ValueError(f"{SLOTS_ENV}={slots} is too small: a sync step needs "
                         f"{SYNC_STEP_SLOTS} slots (or -1 for no bound)")
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
