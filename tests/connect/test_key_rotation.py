"""Key rotation (issue 6, secrets): put a new key first, re-encrypt, retire the old key."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from cryptography.fernet import Fernet

from hubspot_ledger.cli import main
from hubspot_ledger.crypto import KEYS_ENV, TokenCipher
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import TokenUpdate

pytestmark = [pytest.mark.integration]


def test_rotate_key_reencrypts_every_token_so_the_old_key_can_go(
        ledger: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    hook = LedgerHook()
    integration_id = hook.integrations.create("Rotating Ltd", dt.date(2025, 1, 1))
    before = TokenCipher([old])
    hook.integrations.store_connection(integration_id, TokenUpdate(
        access_token=before.encrypt("access-secret-1"),
        refresh_token=before.encrypt("refresh-secret-1"), expires_in=1800,
        scope="oauth", token_created_at=dt.datetime.now(dt.UTC)),
        remote_id="62515", currency="USD", ui_domain="app.hubspot.com")

    monkeypatch.setenv(KEYS_ENV, f"{new},{old}")  # step 1: the new key first, the old kept
    assert main(["rotate-key"]) == 0

    row = ledger.execute("SELECT access_token, refresh_token FROM ledger.integrations "
                         "WHERE id = %s", [integration_id]).fetchone()
    assert row is not None
    after = TokenCipher([new])  # step 2: the old key is gone, the tokens still read
    assert after.decrypt(row[0]) == "access-secret-1"
    assert after.decrypt(row[1]) == "refresh-secret-1"
    assert "secret" not in row[0] + row[1]
