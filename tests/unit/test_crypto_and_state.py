"""Tokens encrypted at rest with rotatable keys; OAuth state signed, expiring, bound (issue #3)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet

from hubspot_ledger import crypto
from hubspot_ledger.oauth_state import InvalidState, sign_state, verify_state

pytestmark = pytest.mark.unit

TOKEN = "na1-aaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def test_ciphertext_does_not_contain_the_token() -> None:
    cipher = crypto.TokenCipher([Fernet.generate_key().decode()])
    stored = cipher.encrypt(TOKEN)
    assert TOKEN not in stored
    assert cipher.decrypt(stored) == TOKEN


def test_key_rotation_reencrypts_with_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = crypto.TokenCipher([old]).encrypt(TOKEN)
    rotated = crypto.TokenCipher([new, old]).rotate(stored)
    assert crypto.TokenCipher([new]).decrypt(rotated) == TOKEN
    with pytest.raises(crypto.TokenDecryptError) as err:
        crypto.TokenCipher([new]).decrypt(stored)
    assert TOKEN not in str(err.value)


def test_keys_come_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(crypto.KEYS_ENV, key)
    assert crypto.TokenCipher([key]).decrypt(crypto.get_cipher().encrypt(TOKEN)) == TOKEN


def test_an_invalid_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(crypto.SecretsConfigError, match="not a valid Fernet key"):
        crypto.TokenCipher(["not-a-key"])


KEY = b"k" * 32
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def test_state_round_trip_binds_the_integration() -> None:
    claims = verify_state(sign_state(42, KEY, now=NOW), KEY, now=NOW)
    assert claims.integration_id == 42
    assert claims.expires_at > NOW


def test_two_states_for_one_integration_differ() -> None:
    assert sign_state(42, KEY, now=NOW) != sign_state(42, KEY, now=NOW)


@pytest.mark.parametrize("mangle", [
    lambda s: s.replace(s.split(".")[0], sign_state(43, KEY, now=NOW).split(".")[0]),
    lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),
    lambda s: "",
    lambda s: "garbage",
])
def test_tampered_state_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidState):
        verify_state(mangle(sign_state(42, KEY, now=NOW)), KEY, now=NOW)


def test_state_signed_with_another_key_is_refused() -> None:
    with pytest.raises(InvalidState, match="signature"):
        verify_state(sign_state(42, b"x" * 32, now=NOW), KEY, now=NOW)


def test_expired_state_is_refused() -> None:
    state = sign_state(42, KEY, now=NOW)
    with pytest.raises(InvalidState, match="expired"):
        verify_state(state, KEY, now=NOW + dt.timedelta(minutes=16))
