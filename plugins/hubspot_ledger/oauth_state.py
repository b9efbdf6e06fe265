"""The OAuth `state` parameter: signed, expiring, bound to one integration.

The consent URL carries it to HubSpot and back; the callback trusts the integration id only
after checking the signature (HMAC-SHA256 with the deployment's key) and the expiry. The nonce
lets the ledger refuse a state that was already used (replay).

Key rotation: a state is signed with the key derived from the newest deployment key, and
verified against every key derived from the keys currently configured
(`crypto.SigningKey.accepted`, or any sequence of keys given to `verify_state`). So a state
issued a minute before an operator puts a new key first in HUBSPOT_LEDGER_FERNET_KEYS still
connects after it, for as long as the old key stays listed (and at most its 15 minutes).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from hubspot_ledger.crypto import SigningKey

STATE_TTL = dt.timedelta(minutes=15)


class InvalidState(ValueError):
    """The state is malformed, tampered with, or expired. The message says which."""


@dataclass(frozen=True)
class StateClaims:
    integration_id: int
    nonce: str
    expires_at: dt.datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str, key: bytes) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign_state(integration_id: int, key: bytes, *, now: dt.datetime | None = None,
               ttl: dt.timedelta = STATE_TTL) -> str:
    expires = (now or dt.datetime.now(dt.UTC)) + ttl
    claims = {"i": integration_id, "e": int(expires.timestamp()), "n": secrets.token_urlsafe(12)}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_sign(payload, key)}"


def _accepted(key: bytes | Sequence[bytes]) -> tuple[bytes, ...]:
    """The keys a state may be signed with: a `SigningKey`'s accepted ones, or those given."""
    if isinstance(key, SigningKey):
        return key.accepted
    if isinstance(key, bytes | bytearray):
        return (bytes(key),)
    return tuple(key)


def verify_state(state: str, key: bytes | Sequence[bytes], *, now: dt.datetime | None = None
                 ) -> StateClaims:
    """The claims of a state signed with `key` (or any of several keys; see the module's
    docstring on rotation), not expired; InvalidState otherwise."""
    payload, _, signature = (state or "").partition(".")
    if not payload or not signature or not (payload + signature).isascii():
        raise InvalidState("OAuth state is missing or malformed; start the connection again")
    if not any(hmac.compare_digest(signature, _sign(payload, k)) for k in _accepted(key)):
        raise InvalidState("OAuth state signature is invalid; start the connection again")
    try:
        claims = json.loads(_unb64(payload))
        integration_id, expiry, nonce = int(claims["i"]), int(claims["e"]), str(claims["n"])
    except (ValueError, KeyError, TypeError):
        raise InvalidState("OAuth state is malformed; start the connection again") from None
    expires_at = dt.datetime.fromtimestamp(expiry, dt.UTC)
    if (now or dt.datetime.now(dt.UTC)) >= expires_at:
        raise InvalidState("OAuth state has expired; start the connection again")
    return StateClaims(integration_id=integration_id, nonce=nonce, expires_at=expires_at)
