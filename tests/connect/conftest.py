"""Fixtures of the connect tests: the HubSpot sandbox as the deployment's HubSpot app, the
deployment's token key, and integrations connected through the real OAuth flow.

Nothing is mocked: HubSpot is the sandbox over HTTP, the ledger is this run's PostgreSQL
database (`ledger` fixture of tests/conftest.py). Helpers are methods of the `env` fixture
(this folder is not a package, so test modules cannot import from here).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import KEYS_ENV, TokenCipher, get_cipher
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import Integration
from hubspot_ledger_tools.sandbox.testing import SandboxServer

HUBSPOT_CONN_ENV = "AIRFLOW_CONN_HUBSPOT_DEFAULT"
TOKEN_ENDPOINT = "POST /oauth/v3/token"
# The deployment's encryption key for this test run. Set explicitly: Airflow's own fernet key
# only exists once the test Airflow home has an airflow.cfg, which a fresh checkout lacks when
# Airflow's configuration is first read.
TEST_FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    # A client secret of this run only, so that finding it anywhere is a leak.
    secret = f"test-client-secret-{secrets.token_hex(16)}"
    with SandboxServer(seed=1, scale="tiny", client_secret=secret) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, back to its initial state (config, tokens, faults, request log)."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def cipher(monkeypatch: pytest.MonkeyPatch) -> TokenCipher:
    """The deployment's token cipher (its key also signs the OAuth state)."""
    monkeypatch.setenv(KEYS_ENV, TEST_FERNET_KEY)
    return get_cipher()


@dataclass
class ConnectEnv:
    """A deployment whose HubSpot app is the sandbox, over this run's ledger."""

    sandbox: SandboxServer
    ledger: psycopg.Connection
    cipher: TokenCipher
    monkeypatch: pytest.MonkeyPatch

    # -- the deployment's hubspot_default connection ---------------------------------------

    def use_app(self, **overrides: Any) -> None:
        """(Re)write `hubspot_default`: overrides of login, password, redirect_uri, scopes."""
        sb = self.sandbox
        extra = {"redirect_uri": overrides.pop("redirect_uri", sb.redirect_uri),
                 "authorize_url": f"{sb.url}/oauth/authorize"}
        if "scopes" in overrides:
            extra["scopes"] = overrides.pop("scopes")
        conn = {"conn_type": "http", "host": sb.url, "login": sb.client_id,
                "password": sb.client_secret, "extra": extra, **overrides}
        self.monkeypatch.setenv(HUBSPOT_CONN_ENV, json.dumps(conn))

    # -- integrations ------------------------------------------------------------------------

    def new_integration(self, organization: str = "Acme Corp") -> int:
        """A disconnected integration (of a new organization, or an existing one)."""
        return LedgerHook().integrations.create(organization, dt.date(2025, 1, 1))

    def consent(self, url: str) -> tuple[str, str]:
        """Open a consent URL as a browser would, stopping at the redirect: (code, state)."""
        response = requests.get(url, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text[:300]
        location = urlparse(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == \
            self.sandbox.redirect_uri
        query = parse_qs(location.query)
        assert set(query) == {"code", "state"}, query.keys()
        return query["code"][0], query["state"][0]

    def connect(self, integration_id: int) -> Integration:
        """The real flow: consent URL → approval → redirect with code and state → exchange."""
        from hubspot_ledger.connect import auth_url, complete_connection

        code, state = self.consent(auth_url(integration_id))
        return complete_connection(code, state)

    def row(self, integration_id: int) -> dict[str, Any]:
        """The integration's row exactly as stored."""
        cursor = self.ledger.execute("SELECT * FROM ledger.integrations WHERE id = %s",
                                     [integration_id])
        row = cursor.fetchone()
        assert row is not None and cursor.description is not None
        return {column.name: value for column, value in zip(cursor.description, row,
                                                             strict=True)}

    def tokens(self, integration_id: int) -> tuple[str, str]:
        """The stored tokens, decrypted: (access token, refresh token)."""
        row = self.row(integration_id)
        assert row["access_token"] and row["refresh_token"]
        return (self.cipher.decrypt(row["access_token"]),
                self.cipher.decrypt(row["refresh_token"]))

    def make_near_expiry(self, integration_id: int, seconds_left: int = 240) -> None:
        """Backdate token_created_at: the access token now expires in `seconds_left`."""
        self.ledger.execute(
            "UPDATE ledger.integrations SET token_created_at = now() - "
            "make_interval(secs => expires_in - %s) WHERE id = %s",
            [seconds_left, integration_id])

    # -- the sandbox's side --------------------------------------------------------------------

    def token_requests(self, grant_type: str | None = None) -> list[dict[str, Any]]:
        """What the sandbox's token endpoint received (optionally of one grant type)."""
        return [r for r in self.sandbox.requests(endpoint=TOKEN_ENDPOINT)
                if grant_type is None or r.get("grant_type") == grant_type]

    def token_works(self, access_token: str) -> bool:
        """Whether HubSpot accepts the access token (lists one product with it)."""
        return requests.get(f"{self.sandbox.url}/crm/v3/objects/products",
                            params={"limit": 1}, timeout=10,
                            headers={"Authorization": f"Bearer {access_token}"}).ok

    def issued_tokens(self) -> set[str]:
        """Every access and refresh token the sandbox ever handed out (thread mode)."""
        oauth = self.sandbox.sandbox.oauth
        with self.sandbox.sandbox.lock:
            return set(oauth.access_tokens) | set(oauth.refresh_tokens)


@pytest.fixture
def env(sandbox: SandboxServer, ledger: psycopg.Connection, cipher: TokenCipher,
        monkeypatch: pytest.MonkeyPatch) -> ConnectEnv:
    connect_env = ConnectEnv(sandbox, ledger, cipher, monkeypatch)
    connect_env.use_app()
    return connect_env
