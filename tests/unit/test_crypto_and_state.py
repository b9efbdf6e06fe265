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


# -- issue 13: states across a key rotation; hostile states ------------------------------------

def test_a_state_signed_before_a_key_rotation_verifies_after_it() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    issued = sign_state(42, crypto.TokenCipher([old]).signing_key, now=NOW)
    rotated = crypto.TokenCipher([new, old])  # the new key first, the old one still listed

    assert verify_state(issued, rotated.signing_key, now=NOW).integration_id == 42
    # New states are signed with the new key alone.
    fresh = sign_state(42, rotated.signing_key, now=NOW)
    assert verify_state(fresh, crypto.TokenCipher([new]).signing_key, now=NOW)
    with pytest.raises(InvalidState, match="signature"):
        verify_state(fresh, crypto.TokenCipher([old]).signing_key, now=NOW)


def test_a_state_of_a_key_no_longer_listed_is_refused() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    issued = sign_state(42, crypto.TokenCipher([old]).signing_key, now=NOW)
    with pytest.raises(InvalidState, match="signature"):
        verify_state(issued, crypto.TokenCipher([new]).signing_key, now=NOW)


def test_verify_state_takes_several_plain_keys_too() -> None:
    state = sign_state(7, b"b" * 32, now=NOW)
    assert verify_state(state, [b"a" * 32, b"b" * 32], now=NOW).integration_id == 7
    with pytest.raises(InvalidState):
        verify_state(state, [b"a" * 32], now=NOW)


@pytest.mark.parametrize("state", ["caf\u00e9.abc", "abc.\ud800", "abc.def\x00", "\u202e.x"])
def test_a_hostile_state_is_refused_not_a_crash(state: str) -> None:
    """compare_digest raises TypeError on non-ASCII text, encode() on a lone surrogate."""
    with pytest.raises(InvalidState, match="start the connection again"):
        verify_state(state, KEY, now=NOW)
