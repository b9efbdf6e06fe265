"""Issue 14, webhook-driven syncs: HubSpot's v3 request signature (shared/reference/
hubspot-api.md §6). The product's check against HubSpot's own signer (the official Python SDK's
`Signature`) and the sandbox's: a call signed the way HubSpot signs passes; a changed body,
another secret, an old timestamp or missing headers do not."""

from __future__ import annotations

import time

import pytest
from hubspot.utils.signature import Signature

from hubspot_ledger.webhooks.signature import (
    MAX_AGE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefused,
    sign_v3,
    signed_headers,
    signed_uri,
    verify_v3,
)
from hubspot_ledger_tools.sandbox import webhooks as sandbox_webhooks

pytestmark = pytest.mark.unit

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://books.example.com/api/integrations/hubspot/webhooks/"
BODY = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        b'"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":123,'
        b'"changeSource":"CRM","propertyName":"dealstage","propertyValue":"closedwon"}]')


def _signed(now: float | None = None, secret: str = SECRET, body: bytes = BODY,
            uri: str = URI) -> dict[str, str]:
    ms = int((time.time() if now is None else now) * 1000)
    return signed_headers(secret, "POST", uri, body, now_ms=ms)


def test_the_signature_is_hubspots_own() -> None:
    """The same value as HubSpot's SDK and the sandbox compute, for the same call."""
    timestamp = "1700000000000"
    ours = sign_v3(SECRET, "POST", URI, BODY, timestamp)
    sdk = Signature.get_signature(SECRET, BODY.decode(), "v3", http_uri=URI,
                                  http_method="POST", timestamp=timestamp)
    assert ours == sdk == sandbox_webhooks.sign_v3(SECRET, "POST", URI, BODY, timestamp)
    sandbox = sandbox_webhooks.signed_headers(SECRET, URI, BODY, int(timestamp))
    assert sandbox[SIGNATURE_HEADER] == ours and sandbox[TIMESTAMP_HEADER] == timestamp


def test_a_call_signed_by_hubspot_passes() -> None:
    verify_v3(SECRET, "POST", [URI], BODY, _signed())


def test_header_names_are_case_insensitive_and_any_of_the_target_urls_may_match() -> None:
    headers = {k.lower(): v for k, v in _signed().items()}
    verify_v3(SECRET, "POST", ["http://proxy.internal/webhooks/", URI], BODY, headers)


def test_a_tampered_body_is_refused() -> None:
    headers = _signed()
    tampered = BODY.replace(b"62515", b"62516")
    with pytest.raises(SignatureRefused, match="does not match"):
        verify_v3(SECRET, "POST", [URI], tampered, headers)


def test_another_apps_secret_is_refused() -> None:
    headers = _signed(secret="another-apps-secret")
    with pytest.raises(SignatureRefused, match="does not match"):
        verify_v3(SECRET, "POST", [URI], BODY, headers)


def test_another_url_or_method_is_refused() -> None:
    headers = _signed()
    with pytest.raises(SignatureRefused, match="does not match"):
        verify_v3(SECRET, "POST", [URI + "?x=1"], BODY, headers)
    with pytest.raises(SignatureRefused, match="does not match"):
        verify_v3(SECRET, "PUT", [URI], BODY, headers)


def test_a_timestamp_older_than_five_minutes_is_refused_even_if_signed_correctly() -> None:
    now = time.time()
    headers = _signed(now - MAX_AGE_SECONDS - 5)
    with pytest.raises(SignatureRefused, match=r"signed 30\d s ago, more than the 300 s"):
        verify_v3(SECRET, "POST", [URI], BODY, headers, now=now)
    verify_v3(SECRET, "POST", [URI], BODY, _signed(now - MAX_AGE_SECONDS + 5), now=now)


def test_a_timestamp_from_the_future_is_refused() -> None:
    now = time.time()
    with pytest.raises(SignatureRefused, match="in the future"):
        verify_v3(SECRET, "POST", [URI], BODY, _signed(now + 3600), now=now)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = {k: v for k, v in _signed().items() if k != missing}
    with pytest.raises(SignatureRefused, match="not a signed HubSpot webhook"):
        verify_v3(SECRET, "POST", [URI], BODY, headers)


@pytest.mark.parametrize("timestamp", ["soon", "-1", "1.7e12", "１７００００００００００", ""])
def test_a_timestamp_that_is_not_epoch_milliseconds_is_refused(timestamp: str) -> None:
    headers = {**_signed(), TIMESTAMP_HEADER: timestamp}
    with pytest.raises(SignatureRefused):
        verify_v3(SECRET, "POST", [URI], BODY, headers)


def test_no_secret_refuses_everything() -> None:
    with pytest.raises(SignatureRefused, match="no client secret"):
        verify_v3("", "POST", [URI], BODY, _signed(secret=""))


def test_the_message_never_quotes_the_secret_or_the_signature() -> None:
    headers = _signed(secret="another-apps-secret")
    with pytest.raises(SignatureRefused) as refused:
        verify_v3(SECRET, "POST", [URI], BODY, headers)
    assert SECRET not in str(refused.value)
    assert headers[SIGNATURE_HEADER] not in str(refused.value)


def test_the_signed_uri_decodes_what_hubspot_decodes() -> None:
    assert signed_uri("https://x.example/hook%3Fa%3Ab%2Cc%40d") == "https://x.example/hook?a:b,c@d"
    assert signed_uri("https://x.example/a%20b%3d") == "https://x.example/a%20b%3d"
