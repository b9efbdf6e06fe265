"""Encryption of OAuth tokens at rest (Fernet) and the key that signs OAuth `state`.

Keys belong to the deployment: `HUBSPOT_LEDGER_FERNET_KEYS` (comma-separated, newest first), or
Airflow's own `[core] fernet_key` by default. Several keys make rotation possible: everything
decrypts with any listed key and encrypts with the first; `rotate()` re-encrypts with the first.
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
        # Signing key for OAuth state, derived so that operators manage one secret.
        self.signing_key = hashlib.sha256(b"hubspot-ledger/oauth-state\0" + keys[0].encode()
                                          ).digest()

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
