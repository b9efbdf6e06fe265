"""HubSpot's v3 request signature: how HubSpot signs the webhook calls it sends, and the check.

    X-HubSpot-Signature-v3 = base64(HMAC-SHA256(key = the app's client secret,
                                                 msg = method + uri + body + timestamp))

`timestamp` is the `X-HubSpot-Request-Timestamp` header (epoch milliseconds) and `uri` the full
URL HubSpot called, scheme, host and query included, with the URL-encoded characters HubSpot's
documentation lists decoded. A call whose timestamp is more than five minutes away from now is
refused before anything else (a replayed call), and the signatures are compared in constant
time (`hmac.compare_digest`). Pure: no Airflow, no I/O; the sandbox signs with `sign_v3` too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE_SECONDS = 300  # HubSpot's: "reject the request if the timestamp is older than 5 minutes"

# The URL-encoded characters HubSpot decodes in the URI it signs (its v3 validation guide).
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
            "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


class SignatureRefused(Exception):
    """The call is not HubSpot's (or is too old): the message says why, and never quotes the
    signature, the secret or the body."""


def signed_uri(uri: str) -> str:
    """`uri` as HubSpot signs it: the characters of `_DECODED` decoded (either case)."""
    out = uri
    for encoded, plain in _DECODED.items():
        out = out.replace(encoded, plain).replace(encoded.lower(), plain)
    return out


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The `X-HubSpot-Signature-v3` value HubSpot sends with this call."""
    message = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_headers(secret: str, method: str, uri: str, body: bytes, *,
                   now_ms: int | None = None) -> dict[str, str]:
    """The two headers HubSpot sends with a call made now (or at `now_ms`)."""
    timestamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    return {SIGNATURE_HEADER: sign_v3(secret, method, uri, body, timestamp),
            TIMESTAMP_HEADER: timestamp}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def fresh_headers(headers: Mapping[str, str], *, now: float | None = None,
                  max_age: float = MAX_AGE_SECONDS) -> tuple[str, str]:
    """(signature, timestamp) of a call signed at most `max_age` seconds from `now`; raises
    `SignatureRefused` when a header is missing or the timestamp too old (or too far ahead)."""
    signature = _header(headers, SIGNATURE_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureRefused(f"the call has no {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} "
                               "headers: not a signed HubSpot webhook")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 16:
        raise SignatureRefused(f"{TIMESTAMP_HEADER} is not epoch milliseconds")
    now = time.time() if now is None else now
    age = now - int(timestamp) / 1000
    if age > max_age:
        raise SignatureRefused(f"the call was signed {age:.0f} s ago, more than the "
                               f"{max_age:.0f} s allowed (a replayed or delayed call)")
    if age < -max_age:
        raise SignatureRefused(f"the call is signed {-age:.0f} s in the future (clocks "
                               "disagree, or a forged timestamp)")
    return signature, timestamp


def verify_v3(secret: str, method: str, uris: Iterable[str], body: bytes,
              headers: Mapping[str, str], *, now: float | None = None,
              max_age: float = MAX_AGE_SECONDS) -> None:
    """Raise `SignatureRefused` unless `headers` carry HubSpot's v3 signature of this call,
    made at most `max_age` seconds from `now`. `uris`: the URL the call was made to, as HubSpot
    may have written it (the configured target URL, the URL as received): one must match."""
    signature, timestamp = fresh_headers(headers, now=now, max_age=max_age)
    if not secret:
        raise SignatureRefused("no client secret to check the signature with")
    given = signature.strip().encode()
    # Every candidate is compared (no early exit): the time taken never tells which matched.
    matched = False
    for uri in dict.fromkeys(uris):
        expected = sign_v3(secret, method, uri, body, timestamp).encode()
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureRefused("the signature does not match (a changed body, another app's "
                               "secret, or a target URL other than the one HubSpot calls)")
