"""`LedgerHook` against the real PostgreSQL: integrations, the DAG factory's read, migrate."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.errors import LedgerSchemaError, LedgerUnavailableError
from hubspot_ledger.load.records import IntegrationStatus, IntegrationSummary

from .helpers import connect

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[Any]
CUTOFF = dt.date(2025, 1, 1)


def hook_for(monkeypatch: pytest.MonkeyPatch, uri: str) -> LedgerHook:
    """A hook on its own Airflow connection (env var), like a deployment would configure it."""
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_ELSEWHERE", uri)
    return LedgerHook(ledger_conn_id="ledger_elsewhere")


# --- create_integration ---------------------------------------------------------------------

def test_create_integration_starts_disconnected_with_invoices_off(ledger: Conn) -> None:
    integration_id = LedgerHook().integrations.create("Acme", CUTOFF)

    assert isinstance(integration_id, int)
    row = ledger.execute(
        "SELECT o.name, i.provider, i.status, i.cutoff_date, i.schedule, i.access_token, "
        "s.sync_invoices, s.organization_id = o.id, s.ar_account_id, s.company_id "
        "FROM ledger.integrations i JOIN ledger.organizations o ON o.id = i.organization_id "
        "JOIN ledger.integration_settings s ON s.integration_id = i.id WHERE i.id = %s",
        [integration_id],
    ).fetchone()
    assert row == ("Acme", "hubspot", "disconnected", CUTOFF, "@hourly", None,
                   False, True, None, None)


def test_two_integrations_of_one_organization_share_it(ledger: Conn) -> None:
    first = LedgerHook().integrations.create("Acme", CUTOFF)
    second = LedgerHook().integrations.create("  Acme ", dt.date(2025, 6, 1))
    other = LedgerHook().integrations.create("Globex", CUTOFF)

    assert len({first, second, other}) == 3
    orgs = ledger.execute(
        "SELECT o.name, count(i.id) FROM ledger.organizations o "
        "JOIN ledger.integrations i ON i.organization_id = o.id GROUP BY o.name ORDER BY 1"
    ).fetchall()
    assert orgs == [("Acme", 2), ("Globex", 1)]
    settings = ledger.execute("SELECT count(*) FROM ledger.integration_settings").fetchone()
    assert settings == (3,)


def test_concurrent_creates_of_a_new_organization_make_it_once(ledger: Conn) -> None:
    barrier = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            hook = LedgerHook()
            barrier.wait()
            ids.append(hook.integrations.create("Initech", CUTOFF))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(set(ids)) == 4
    assert ledger.execute("SELECT count(*) FROM ledger.organizations").fetchone() == (1,)


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_an_empty_organization_name_is_refused(ledger: Conn, name: str) -> None:
    with pytest.raises(ValueError, match="organization name must not be empty"):
        LedgerHook().integrations.create(name, CUTOFF)
    assert ledger.execute("SELECT count(*) FROM ledger.organizations").fetchone() == (0,)


def test_a_datetime_cutoff_is_refused(ledger: Conn) -> None:
    with pytest.raises(TypeError, match="cutoff_date must be a date"):
        LedgerHook().integrations.create("Acme", dt.datetime(2025, 1, 1, 12, 0))  # noqa: DTZ001


def test_nothing_is_half_created(ledger: Conn) -> None:
    # Break the settings insert: the new organization and integration must vanish with it.
    ledger.execute("ALTER TABLE ledger.integration_settings ADD CONSTRAINT t_break CHECK (false)")
    try:
        with pytest.raises(psycopg.errors.CheckViolation):
            LedgerHook().integrations.create("Acme", CUTOFF)
    finally:
        ledger.execute("ALTER TABLE ledger.integration_settings DROP CONSTRAINT t_break")
    assert ledger.execute("SELECT count(*) FROM ledger.organizations").fetchone() == (0,)
    assert ledger.execute("SELECT count(*) FROM ledger.integrations").fetchone() == (0,)


# --- list_integrations ----------------------------------------------------------------------

def test_list_integrations_returns_what_was_created(ledger: Conn) -> None:
    hook = LedgerHook()
    first = hook.integrations.create("Acme", CUTOFF)
    second = hook.integrations.create("Globex", dt.date(2024, 7, 1))
    ledger.execute("UPDATE ledger.integrations SET status = 'connected', schedule = '@daily' "
                   "WHERE id = %s", [second])

    listed = hook.integrations.list()

    org = dict(ledger.execute("SELECT name, id FROM ledger.organizations").fetchall())
    assert listed == [
        IntegrationSummary(first, org["Acme"], "Acme", IntegrationStatus.DISCONNECTED,
                           "@hourly", CUTOFF),
        IntegrationSummary(second, org["Globex"], "Globex", IntegrationStatus.CONNECTED,
                           "@daily", dt.date(2024, 7, 1)),
    ]


def test_list_integrations_is_empty_on_an_empty_ledger(ledger: Conn) -> None:
    assert LedgerHook().integrations.list() == []


def test_summaries_round_trip_through_json(ledger: Conn) -> None:
    LedgerHook().integrations.create("Acme", CUTOFF)
    listed = LedgerHook().integrations.list()
    cached = json.loads(json.dumps([s.to_dict() for s in listed]))
    assert cached[0]["cutoff_date"] == "2025-01-01"
    assert cached[0]["status"] == "disconnected"
    assert [IntegrationSummary.from_dict(d) for d in cached] == listed


def test_list_integrations_fails_fast_on_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hook_for(monkeypatch, "postgresql://postgres@127.0.0.1:1/ledger")
    with pytest.raises(LedgerUnavailableError, match="cannot connect to the ledger") as caught:
        hook.integrations.list(timeout_seconds=2)
    assert "\n" not in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung ledger)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_list_integrations_gives_up_on_a_silent_server(
    monkeypatch: pytest.MonkeyPatch, silent_server: int
) -> None:
    hook = hook_for(monkeypatch, f"postgresql://postgres@127.0.0.1:{silent_server}/ledger")
    # Without its deadline it would wait forever (the test's own time-out would end it).
    with pytest.raises(LedgerUnavailableError):
        hook.integrations.list(timeout_seconds=2)


def test_list_integrations_gives_up_on_a_blocked_query(ledger_db: str, ledger: Conn) -> None:
    LedgerHook().integrations.create("Acme", CUTOFF)
    with psycopg.connect(ledger_db) as blocker:
        blocker.execute("LOCK TABLE ledger.integrations IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(LedgerUnavailableError, match="did not answer within 1s"):
            LedgerHook().integrations.list(timeout_seconds=1)
        blocker.rollback()
    assert len(LedgerHook().integrations.list()) == 1


def test_list_integrations_on_an_unmigrated_database_says_migrate(
    monkeypatch: pytest.MonkeyPatch, scratch_db: str, ledger_db: str
) -> None:
    hook = hook_for(monkeypatch, ledger_db.rsplit("/", 1)[0] + f"/{scratch_db}")
    with pytest.raises(LedgerSchemaError, match="hubspot-ledger migrate"):
        hook.integrations.list()


# --- migrate --------------------------------------------------------------------------------

def test_migrate_creates_a_missing_database(new_db_name: str) -> None:
    hook = LedgerHook(database=new_db_name)
    with pytest.raises(LedgerUnavailableError, match="does not exist"):
        hook.migrate()
    applied = hook.migrate(create_database=True)
    assert applied and applied[0] == "0001"
    assert hook.migrate(create_database=True) == []
    with connect(new_db_name) as conn:
        assert conn.execute("SELECT to_regclass('ledger.integrations')").fetchone() is not None


def test_migrate_against_a_down_server_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = hook_for(monkeypatch, "postgresql://postgres@127.0.0.1:1/ledger")
    with pytest.raises(LedgerUnavailableError, match="Connection refused") as caught:
        hook.migrate(create_database=True)
    assert "\n" not in str(caught.value)
