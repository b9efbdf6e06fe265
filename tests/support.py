"""What many test modules share: pointing the deployment at a sandbox, and a fixed token.

Importable as `support` (pytest puts tests/ on the path, pyproject `pythonpath`).
"""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from hubspot_ledger.crypto import KEYS_ENV
from hubspot_ledger_tools.sandbox.testing import SandboxServer


def use_sandbox_app(mp: pytest.MonkeyPatch, sb: SandboxServer) -> None:
    """`hubspot_default` pointing at the sandbox's OAuth app, and a Fernet key of the test's
    own for the tokens it stores (R-AUTH-1: the app belongs to the deployment)."""
    mp.setenv(KEYS_ENV, Fernet.generate_key().decode())
    mp.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps({
        "conn_type": "http", "host": sb.url, "login": sb.client_id,
        "password": sb.client_secret,
        "extra": {"redirect_uri": sb.redirect_uri,
                  "authorize_url": f"{sb.url}/oauth/authorize"}}))


class StaticToken:
    """A token source that always answers the same access token (no OAuth round trip)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh(self) -> str:
        return self.token
