"""Running one integration's DAG to completion (`hubspot-ledger sync`, demo).

Uses Airflow's own `dag.test()`: a real DAG run recorded in the metadata DB, tasks executed
in-process in their fixed order, no scheduler needed.

`hubspot-ledger sync` runs it in a child process (`run_supervised`), so that SIGTERM or Ctrl-C
can stop it at once whatever it is doing — Airflow's task runner would catch a signal raised
inside a task, mark the task for retry and go on — and then marks the run failed itself, in
`ledger.sync_runs` and in Airflow. A run whose process is killed outright (SIGKILL) is marked
failed by the next run of the integration (sync.runner, "runs killed mid-way").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hubspot_ledger.config import prepare_airflow_home
from hubspot_ledger.errors import UserFacingError

log = logging.getLogger(__name__)

# How long the parent waits for PostgreSQL to notice that a killed child's connections are gone.
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


class SyncStopped(UserFacingError):
    """`hubspot-ledger sync` was asked to stop (SIGTERM, SIGINT) and stopped its run."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # what a shell reports for a process a signal ended


def find_dag_id(integration_id: int) -> str:
    from hubspot_ledger.dag_factory import dag_id_for
    from hubspot_ledger.hooks.ledger import LedgerHook

    for summary in LedgerHook().integrations.list():
        if summary.id == integration_id:
            return dag_id_for(summary)
    from hubspot_ledger.errors import NotFound

    raise NotFound(f"Integration {integration_id} does not exist")


def dag_run_id_for(logical_date: dt.datetime) -> str:
    """The id `dag.test()` gives the run of that logical date (Airflow's own rule)."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.types import DagRunType

    when = timezone.coerce_datetime(logical_date)
    return DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)


def run_integration_dag(integration_id: int, *, full_refresh: bool = False,
                        logical_date: dt.datetime | None = None) -> RunResult:
    """The integration's DAG run to completion in this process.

    The run gets a logical date of its own (now): `dag.test()` replaces the DAG's run of the
    same logical date and clears the task instances of every run in that date range, so with
    none (`logical_date=None`) it would delete a queued or running triggered run of the DAG
    (those have no logical date either) and reset every other run's tasks."""
    prepare_airflow_home()
    from airflow.dag_processing.dagbag import DagBag

    from hubspot_ledger.dag_factory import dag_file_for
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.sync.runner import attend_whole_run

    logical_date = logical_date or dt.datetime.now(dt.UTC)
    dag_id = find_dag_id(integration_id)
    bag = DagBag(dag_folder=str(dag_file_for(integration_id)))
    if dag_id not in bag.dags:
        errors = "; ".join(f"{k}: {v.splitlines()[-1]}" for k, v in bag.import_errors.items())
        raise RuntimeError(f"DAG {dag_id} was not built{': ' + errors if errors else ''}")
    # Every task runs in this process, which attends the run (its liveness lock) from before
    # the run exists until it ends: no other run can take it for dead meanwhile.
    with LedgerHook().locks.run_alive(integration_id, dag_run_id_for(logical_date)), \
            attend_whole_run(metadata_dag_run_state(dag_id)):
        run = bag.dags[dag_id].test(run_after=logical_date, logical_date=logical_date,
                                    run_conf={"full_refresh": full_refresh})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return RunResult(dag_id=dag_id, run_id=str(run.run_id), state=str(run.state),
                     task_states=states)


# -- what Airflow's metadata database says of other runs ------------------------------------


_UNFINISHED = ("running", "queued")


def metadata_dag_run_state(dag_id: str) -> Any:
    """A `sync.runner.DagRunState` reading Airflow's metadata database (this process runs DAGs
    with `dag.test()`, so it has one). A `hubspot-ledger sync` run (`triggered_by` test) still
    `running` whose liveness lock nobody holds has lost its process: it is failed in Airflow
    too (so the scheduler's max_active_runs is not held by it), and reported as "gone"."""
    def state(run_id: str) -> str | None:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunTriggeredByType
        from sqlalchemy import select

        with create_session() as session:
            run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id,
                                                      DagRun.run_id == run_id))
            if run is None:
                return None
            value = str(getattr(run.state, "value", run.state))
            if value in _UNFINISHED and run.triggered_by == DagRunTriggeredByType.TEST:
                _fail_dag_run(run, session)
                return "gone"
            return value
    return state


def _fail_dag_run(run: Any, session: Any) -> None:
    """Mark a DAG run whose process is gone failed, with its unfinished tasks."""
    from airflow.utils.state import DagRunState, TaskInstanceState

    unfinished = {TaskInstanceState.RUNNING, TaskInstanceState.QUEUED,
                  TaskInstanceState.SCHEDULED, TaskInstanceState.UP_FOR_RETRY,
                  TaskInstanceState.UP_FOR_RESCHEDULE, TaskInstanceState.DEFERRED}
    for ti in run.get_task_instances(session=session):
        if ti.state in unfinished:
            ti.state = TaskInstanceState.FAILED
            ti.end_date = dt.datetime.now(dt.UTC)
    run.set_state(DagRunState.FAILED)
    session.flush()


# -- hubspot-ledger sync: the run in a child process, stoppable --------------------------------


def run_supervised(integration_id: int, *, full_refresh: bool = False, verbose: bool = False
                   ) -> RunResult:
    """`run_integration_dag` in a child process. SIGTERM or SIGINT stop the child at once: it
    is killed outright (SIGKILL: a gentler signal would be caught by Airflow's task runner,
    which marks the task for retry and goes on), PostgreSQL rolls back what it was writing and
    frees its locks; then the run is marked failed — its sync_runs row with a message saying
    it was stopped, its Airflow DAG run with its unfinished tasks — and SyncStopped raised."""
    logical_date = dt.datetime.now(dt.UTC)  # the run's, so its id is known here too
    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            if child is not None:
                _kill(child)

    with tempfile.TemporaryDirectory(prefix="hubspot-ledger-sync-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "hubspot_ledger.run_dag",
                   "--integration", str(integration_id), "--result", str(result_file),
                   "--logical-date", logical_date.isoformat(), "--parent", str(os.getpid())]
        command += ["--full-refresh"] if full_refresh else []
        command += ["--verbose"] if verbose else []
        # Signals reach the main thread only (the CLI's); elsewhere the caller stops us.
        stoppers = (signal.SIGTERM, signal.SIGINT) \
            if threading.current_thread() is threading.main_thread() else ()
        previous = {s: signal.signal(s, on_signal) for s in stoppers}
        try:
            # Its own session: a terminal's Ctrl-C reaches this process only, which stops it.
            child = subprocess.Popen(command, start_new_session=True)  # noqa: S603 - ours
            if received:
                _kill(child)
            code = child.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if received:
            raise _stopped(integration_id, logical_date, received[0])
        if result_file.exists():
            data = json.loads(result_file.read_text())
            if "error" in data:
                error_class = UserFacingError if data.get("user_facing") else RuntimeError
                raise error_class(data["error"])
            return RunResult(**data)
    raise RuntimeError(f"the sync process ended with exit status {code} before reporting a "
                       "result; see its log above")


def _kill(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child and anything it started (its own process group)."""
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # gone already


def _stopped(integration_id: int, logical_date: dt.datetime, signum: int) -> SyncStopped:
    """The child is gone: mark the run it was running failed, and say so."""
    name = signal.Signals(signum).name
    message = (f"stopped: hubspot-ledger sync received {name} and stopped this run before it "
               "finished")
    try:
        run_id = _settle_stopped_run(integration_id, logical_date, message)
    except Exception as exc:  # noqa: BLE001 - the stop itself must still be reported
        log.warning("Could not mark the stopped run failed: %s", exc, exc_info=True)
        return SyncStopped(f"sync of integration {integration_id} stopped by {name}; its run "
                           f"could not be marked failed ({type(exc).__name__}): the next run "
                           "will", signum)
    what = f"run {run_id} marked failed" if run_id else "its run had not started"
    return SyncStopped(f"sync of integration {integration_id} stopped by {name}: {what}",
                       signum)


def _settle_stopped_run(integration_id: int, logical_date: dt.datetime, message: str
                        ) -> str | None:
    """Fail the stopped child's DAG run (with its unfinished tasks) and its sync_runs row.
    Returns its id, or None when the child had not created it yet."""
    prepare_airflow_home()
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from hubspot_ledger.hooks.ledger import LedgerHook

    ledger = LedgerHook()
    run_id = dag_run_id_for(logical_date)
    # The child is gone; PostgreSQL notices its closed connections within moments.
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while ledger.locks.run_is_alive(integration_id, run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == find_dag_id(integration_id),
                                                  DagRun.run_id == run_id))
        if run is not None and str(getattr(run.state, "value", run.state)) in _UNFINISHED:
            _fail_dag_run(run, session)
    settled = ledger.locks.settle_interrupted_run(integration_id, run_id, message)
    return run_id if run is not None or settled else None


# -- the child ----------------------------------------------------------------------------------


def _exit_with_parent(parent: int) -> None:
    """The child must not outlive `hubspot-ledger sync`: if that is killed outright, this
    process goes too (and PostgreSQL frees the run's liveness and write locks)."""
    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.25)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _child(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubspot_ledger.run_dag")
    parser.add_argument("--integration", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--parent", type=int)
    parser.add_argument("--logical-date", type=dt.datetime.fromisoformat)
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.parent:
        _exit_with_parent(args.parent)
    from hubspot_ledger.cli import _log_to_stderr
    from hubspot_ledger.config import apply_airflow_env_defaults

    apply_airflow_env_defaults()
    _log_to_stderr(args.verbose)
    data: dict[str, Any]
    try:
        data = asdict(run_integration_dag(args.integration, full_refresh=args.full_refresh,
                                          logical_date=args.logical_date))
    except UserFacingError as exc:
        data = {"error": str(exc), "user_facing": True}
    except Exception as exc:  # noqa: BLE001 - the parent prints it as one line
        log.debug("failure", exc_info=True)
        data = {"error": f"{type(exc).__name__}: {exc}"}
    tmp = args.result.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(args.result)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
