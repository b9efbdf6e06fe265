"""Fixtures of the connect tests: the HubSpot sandbox as the deployment's HubSpot app, the
deployment's token key, and integrations connected through the real OAuth flow.

Nothing is mocked: HubSpot is the sandbox over HTTP (`sandbox` of tests/conftest.py), the ledger
is this run's PostgreSQL database (`ledger` of tests/conftest.py). Helpers are methods of the
`env` fixture (this folder is not a package, so test modules cannot import from here).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet
from support import HUBSPOT_CONN_ENV, consent, hubspot_connection

from hubspot_ledger.crypto import KEYS_ENV, TokenCipher, get_cipher
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import Integration
from hubspot_ledger_tools.sandbox.testing import SandboxServer

TOKEN_ENDPOINT = "POST /oauth/v3/token"
# The deployment's encryption key for this test run. Set explicitly: Airflow's own fernet key
# only exists once the test Airflow home has an airflow.cfg, which a fresh checkout lacks when
# Airflow's configuration is first read.
TEST_FERNET_KEY = Fernet.generate_key().decode()


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
        self.monkeypatch.setenv(HUBSPOT_CONN_ENV, hubspot_connection(self.sandbox, **overrides))

    # -- integrations ------------------------------------------------------------------------

    def new_integration(self, organization: str = "Acme Corp") -> int:
        """A disconnected integration (of a new organization, or an existing one)."""
        return LedgerHook().integrations.create(organization, dt.date(2025, 1, 1))

    def consent(self, url: str) -> tuple[str, str]:
        """Open a consent URL as a browser would, stopping at the redirect: (code, state)."""
        return consent(url, self.sandbox.redirect_uri)

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
