"""Encryption of OAuth tokens at rest (Fernet) and the key that signs OAuth `state`.

Keys belong to the deployment: `HUBSPOT_LEDGER_FERNET_KEYS` (comma-separated, newest first), or
Airflow's own `[core] fernet_key` by default. Several keys make rotation possible: everything
decrypts with any listed key and encrypts with the first; `rotate()` re-encrypts with the first.
OAuth states follow the same rule: signed with the key derived from the first, accepted when
signed with the key derived from any listed one (`SigningKey`).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEYS_ENV = "HUBSPOT_LEDGER_FERNET_KEYS"


class SecretsConfigError(RuntimeError):
    """No usable encryption key is configured."""


class TokenDecryptError(RuntimeError):
    """A stored token cannot be decrypted with the configured keys (never carries the token)."""


def _configured_keys() -> list[str]:
    raw = os.environ.get(KEYS_ENV, "")
    if not raw.strip():
        from airflow.configuration import conf

        raw = conf.get("core", "fernet_key", fallback="") or ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise SecretsConfigError(
            f"No encryption key: set {KEYS_ENV} or Airflow's [core] fernet_key")
    return keys


def _derive_signing_key(key: str) -> bytes:
    # Derived, so that operators manage one secret per key.
    return hashlib.sha256(b"hubspot-ledger/oauth-state\0" + key.encode()).digest()


class SigningKey(bytes):
    """The key that signs OAuth states (the bytes themselves: derived from the newest key),
    carrying the keys a state may have been signed with (`accepted`: derived from every
    configured key, newest first). `oauth_state.verify_state` accepts any of them, so a state
    issued just before a key rotation still verifies after it."""

    accepted: tuple[bytes, ...]

    def __new__(cls, keys: list[str]) -> SigningKey:
        derived = tuple(_derive_signing_key(k) for k in keys)
        signing = super().__new__(cls, derived[0])
        signing.accepted = derived
        return signing


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretsConfigError("TokenCipher needs at least one key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError:
            raise SecretsConfigError(
                "An encryption key is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from None
        # Signing key for OAuth state (and the keys it accepts), derived from the same keys.
        self.signing_key = SigningKey(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError(
                "Stored HubSpot token cannot be decrypted with the configured keys "
                "(was the encryption key changed without rotation?)") from None

    def rotate(self, ciphertext: str) -> str:
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError("Stored token cannot be decrypted for rotation") from None


@lru_cache(maxsize=4)
def _cipher_for(keys: tuple[str, ...]) -> TokenCipher:
    return TokenCipher(list(keys))


def get_cipher() -> TokenCipher:
    """The deployment's cipher (re-read from configuration, so a key change takes effect)."""
    return _cipher_for(tuple(_configured_keys()))
