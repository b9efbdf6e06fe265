"""Tokens are encrypted at rest and never appear in logs, XComs, the metadata DB or the ledger
(issue 3: "tokens unreadable in the raw table and absent from captured logs of a whole run")."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from hubspot_ledger.crypto import TokenCipher, TokenDecryptError
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.integration_settings import save_settings
from hubspot_ledger.tokens import IntegrationTokens

if TYPE_CHECKING:
    from conftest import ConnectEnv


def ledger_text(ledger: psycopg.Connection) -> str:
    """Every row of every ledger table, as text."""
    tables = [t for (t,) in ledger.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'ledger' ORDER BY tablename")]
    return "\n".join(
        str(row[0]) for table in tables for row in ledger.execute(
            sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier("ledger", table))))


@pytest.mark.integration
def test_r_auth_3_tokens_are_unreadable_in_the_raw_table(env: ConnectEnv) -> None:
    integration_id = env.new_integration()
    env.connect(integration_id)
    rows = [env.row(integration_id)]  # as the code exchange stored them
    env.make_near_expiry(integration_id)
    IntegrationTokens(integration_id).access_token()  # a refresh stores a second access token
    rows.append(env.row(integration_id))

    issued = env.issued_tokens()  # the sandbox's side: every token it ever handed out
    assert len(issued) == 3  # access token, refresh token, refreshed access token
    raw = "\n".join(f"{r['access_token']}\n{r['refresh_token']}" for r in rows)
    assert [t for t in issued if t in raw] == []
    assert [t for t in issued if t in ledger_text(env.ledger)] == []
    row = rows[-1]
    # The deployment's key reads them back, to what HubSpot issued.
    access, refresh = env.tokens(integration_id)
    assert {access, refresh} <= issued and env.token_works(access)
    # Another key cannot, and says so without the token.
    stranger = TokenCipher([Fernet.generate_key().decode()])
    with pytest.raises(TokenDecryptError) as err:
        stranger.decrypt(row["refresh_token"])
    assert refresh not in str(err.value)
    # The integration's repr (log lines, tracebacks) carries no token, not even encrypted.
    shown = repr(LedgerHook().integrations.get(integration_id))
    assert row["access_token"] not in shown and row["refresh_token"] not in shown


@pytest.mark.e2e
def test_r_auth_6_no_token_or_client_secret_in_logs_xcoms_or_metadata_of_a_whole_run(
        env: ConnectEnv, books: Callable[..., int], airflow_home: Path,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.configuration import conf
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from hubspot_ledger import dag_factory
    from hubspot_ledger.run_dag import run_integration_dag

    # Whatever the sync steps do, a failing one must not hold this test for minutes of retry
    # delays: secrecy is about what the run writes, not about retries.
    monkeypatch.setitem(dag_factory.DEFAULT_ARGS, "retries", 0)
    started = time.time()
    caplog.set_level(logging.DEBUG)  # root logger: every library's debug lines too
    # urllib3's own level too: HubSpot's SDK (another test, same process) sets it to WARNING.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    # A DAG id of its own: the test Airflow home's metadata DB outlives this ledger DB.
    integration_id = books(f"Secrecy {uuid.uuid4().hex[:8]}", configured=True)
    settings = save_settings(integration_id, sync_invoices=True)  # the whole plan, as the demo
    assert settings.sync_invoices and settings.company
    env.connect(integration_id)
    env.make_near_expiry(integration_id)  # the run refreshes before syncing…
    env.sandbox.add_fault(action="expire_token", path="/crm/*", first=1)  # …and after a 401

    result = run_integration_dag(integration_id)

    assert result.task_states["validate_setup"] == "success", result.task_states
    assert result.task_states["refresh_token"] == "success", result.task_states
    crm_calls = [r for r in env.sandbox.requests() if r["path"].startswith("/crm/")]
    refreshes = len(env.token_requests("refresh_token"))
    assert refreshes == (2 if crm_calls else 1), (refreshes, len(crm_calls))
    secrets = env.issued_tokens() | {env.sandbox.client_secret}
    assert len(secrets) == 2 + refreshes + 1  # access tokens, the refresh token, the secret

    # Everything that was logged: the records of every logger (the task logs of dag.test
    # included), the console, and the files under the Airflow home written meanwhile (task
    # logs, if any, and the metadata DB: XComs, rendered fields, run conf, task history).
    logged = caplog.text + "\n" + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    out = capfd.readouterr()
    console = out.out + out.err
    assert f"HubSpot access token of integration {integration_id} is valid" in logged
    assert "HubSpot answered 401" in logged or not crm_calls
    assert any(r.levelno == logging.DEBUG and r.name.startswith("urllib3")
               for r in caplog.records)  # HTTP debug lines were captured too
    files = {str(p): p.read_bytes().decode("utf-8", errors="replace")
             for p in Path(airflow_home).rglob("*")
             if p.is_file() and p.stat().st_mtime >= started - 1}
    metadata_db = conf.get("database", "sql_alchemy_conn").removeprefix("sqlite:///")
    assert any(result.run_id in text for name, text in files.items()
               if name.startswith(metadata_db)), "the run's metadata rows were not scanned"
    with create_session() as session:
        xcoms = [repr(v) for (v,) in session.query(XComModel.value).filter(
            XComModel.dag_id == result.dag_id, XComModel.run_id == result.run_id)]
    places = {"logs": logged, "console": console, "xcoms": "\n".join(xcoms),
              "ledger": ledger_text(env.ledger), **files}

    leaks = {(where, secret[:6] + "…") for where, text in places.items()
             for secret in secrets if secret in text}
    assert leaks == set()
