"""Endpoint hygiene through a real api-server (issue 13, point 5): every finding of the red-team
pass reproduced, and now answered as it should be.

- a 150 MB POST to the unauthenticated OAuth callback took the api-server from 286 MB to 613 MB;
- NUL or a lone surrogate in a settings value gave a bare 500;
- the authorization code appeared in the api-server's access log;
- trigger-sync accepted a cookie-only POST (cross-site request forgery);
- OAuth states issued just before a key rotation were refused after it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from hubspot_ledger.api.guard import MAX_BODY_BYTES
from hubspot_ledger.crypto import TokenCipher
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.load.records import IntegrationStatus
from hubspot_ledger.oauth_state import sign_state

from .helpers import PREFIX, AirflowApi, process_tree_rss, raw_request

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MB = 1024 * 1024
TOO_LARGE = f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB; nothing was read " \
            "or changed"
COOKIE_ONLY = ("This request changes the integration, so it must carry the Airflow token in the "
               "Authorization header (Bearer); the session cookie alone is not accepted")
CODES = {"ar_account": "1100", "deferred_revenue_account": "2400", "expense_account": "5000",
         "income_account": "4000", "clearing_account": "1190"}


def zeros(total: int, chunk: int = MB) -> Iterator[bytes]:
    block = b"0" * chunk
    for start in range(0, total, chunk):
        yield block[: min(chunk, total - start)]


def chunked(total: int, chunk: int = 8192) -> Iterator[bytes]:
    """`total` bytes in HTTP/1.1 chunked transfer coding (no Content-Length)."""
    for piece in zeros(total, chunk):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


# -- body limits ------------------------------------------------------------------------------

def test_a_150_mb_post_to_the_oauth_callback_is_refused_at_once_without_reading_it(
        airflow_api: AirflowApi) -> None:
    total = 150 * MB
    airflow_api.call("GET", "/oauth-callback/", user=None)  # the app is built on first use
    before = process_tree_rss(airflow_api.pid)

    response = raw_request(airflow_api.url, "POST", f"{PREFIX}/oauth-callback/",
                           {"Content-Type": "application/json",
                            "Content-Length": str(total)}, zeros(total))

    assert response.status == 413
    assert response.json() == {"detail": TOO_LARGE}
    assert response.headers.get("connection") == "close"
    # The server hung up rather than read (or buffer) the rest: what got through before the
    # reset is what the kernels' socket buffers hold, a few MB.
    assert response.hung_up and response.sent < 32 * MB
    grown = process_tree_rss(airflow_api.pid) - before
    assert grown < 20 * MB, f"the api-server grew by {grown / MB:.0f} MB"


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(airflow_api: AirflowApi,
                                                            books: Callable[..., int]) -> None:
    """No Content-Length to refuse up front: the body is counted as it arrives."""
    integration_id = books()
    response = raw_request(airflow_api.url, "PUT", f"{PREFIX}/{integration_id}/settings/",
                           {"Authorization": f"Bearer {airflow_api.token()}",
                            "Content-Type": "application/json",
                            "Transfer-Encoding": "chunked"}, chunked(20 * MB))

    assert response.status == 413
    assert response.json() == {"detail": TOO_LARGE}
    assert response.hung_up and response.sent < 20 * MB
    assert airflow_api.call("GET", f"/{integration_id}/settings/").json()["ar_account"] is None


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/oauth-callback/"), ("GET", "/oauth-callback/"), ("GET", "/auth/"),
    ("POST", "/1/trigger-sync/"), ("GET", "/1/settings/"), ("PUT", "/1/settings/"),
    ("POST", "/1/settings/"), ("GET", "/1/errors/"), ("GET", "/openapi.json"),
    ("POST", "/no-such-route/"),
])
def test_every_route_refuses_a_declared_body_over_the_limit(
        airflow_api: AirflowApi, method: str, path: str) -> None:
    response = raw_request(airflow_api.url, method, PREFIX + path,
                           {"Content-Length": str(MAX_BODY_BYTES + 1)}, iter([b"{"]))
    assert response.status == 413
    assert response.json() == {"detail": TOO_LARGE}


def test_a_body_under_the_limit_is_handed_to_the_route_whole(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    integration_id = books()
    body = json.dumps({"company": "Acme Ltd", "sync_invoices": True}).encode()
    padded = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"  # exactly at the limit
    response = airflow_api.call("PUT", f"/{integration_id}/settings/", data=padded,
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["company"] == "Acme Ltd"


# -- hostile values: 422 or 400 with a message, never a bare 500 ------------------------------

HOSTILE = [("\x00", "contains a NUL character"),
           ("Acme\ud800Ltd", "is not valid Unicode (it contains a lone surrogate)"),
           ("Acme\nLtd", "contains a control character"),
           ("\x1b[31mAcme", "contains a control character"),
           ("A" * 5000, "is longer than")]


@pytest.mark.parametrize(("value", "said"), HOSTILE,
                         ids=["nul", "surrogate", "newline", "escape", "long"])
@pytest.mark.parametrize("field", ["company", "income_account"])
def test_a_hostile_settings_value_is_422_naming_the_setting(
        airflow_api: AirflowApi, books: Callable[..., int], field: str, value: str,
        said: str) -> None:
    integration_id = books()
    # As a JSON client sends them: \u0000 and \ud800 escapes (json.dumps writes both).
    body = json.dumps({**CODES, field: value, "sync_invoices": True})

    response = airflow_api.call("PUT", f"/{integration_id}/settings/", data=body,
                                headers={"Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("Settings not saved: the ") and said in detail
    assert ("accounting company name" if field == "company" else "income account code") \
        in detail
    after = airflow_api.call("GET", f"/{integration_id}/settings/").json()
    assert after["ar_account"] is None and after["sync_invoices"] is False


@pytest.mark.parametrize("params", [
    {"code": "abc\x00def", "state": "x.y"},
    {"code": "abc\ud800", "state": "x.y"},
    {"code": "c" * 5000, "state": "x.y"},
    {"code": "abc", "state": "caf\u00e9.sign\ud800"},
    {"error": "access_denied", "error_description": "no\ud800\x1b[2J" + "!" * 500},
], ids=["nul-code", "surrogate-code", "long-code", "non-ascii-state", "hostile-error"])
def test_a_hostile_callback_is_a_400_with_a_message(airflow_api: AirflowApi,
                                                     params: dict[str, str]) -> None:
    response = airflow_api.call("POST", "/oauth-callback/", user=None,
                                data=json.dumps(params),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.endswith("start the connection again")
    assert "\x1b" not in detail and len(detail) < 400


def test_an_integration_id_beyond_any_id_is_404(airflow_api: AirflowApi) -> None:
    huge = 10**30
    for path in (f"/{huge}/settings/", f"/{huge}/errors/", "/-5/settings/"):
        response = airflow_api.call("GET", path)
        assert response.status_code == 404, response.text
        assert response.json()["detail"].endswith("does not exist")


# -- CSRF: changes need the bearer token, not the UI's cookie alone ----------------------------

def cookie_only(api: AirflowApi, method: str, path: str, **kwargs: object) -> requests.Response:
    """A request a browser would send for another site: the session cookie, no header."""
    return requests.request(method, api.url + PREFIX + path, timeout=30,
                            cookies={"_token": api.token()}, **kwargs)  # type: ignore[arg-type]


def test_trigger_sync_refuses_a_cookie_only_post(airflow_api: AirflowApi,
                                                 books: Callable[..., int]) -> None:
    integration_id = books("Csrf Org", configured=True)
    LedgerHook().integrations.set_status(integration_id, IntegrationStatus.CONNECTED)
    airflow_api.reserialize()

    forged = cookie_only(airflow_api, "POST", f"/{integration_id}/trigger-sync/",
                         json={"full_refresh": True})

    assert forged.status_code == 403
    assert forged.json() == {"detail": COOKIE_ONLY}
    runs = airflow_api.call("GET", "/api/v2/dags/~/dagRuns").json()["dag_runs"]
    assert [r for r in runs if r["dag_id"].endswith(f"_{integration_id}")] == []
    # The same request with the token in the header is what a real client sends.
    assert airflow_api.call("POST", f"/{integration_id}/trigger-sync/",
                            cookies={"_token": airflow_api.token()}).status_code == 202


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_saving_settings_refuses_a_cookie_only_request(
        airflow_api: AirflowApi, books: Callable[..., int], method: str) -> None:
    integration_id = books()
    forged = cookie_only(airflow_api, method, f"/{integration_id}/settings/",
                         json={"sync_invoices": True})
    assert forged.status_code == 403
    assert forged.json() == {"detail": COOKIE_ONLY}
    assert airflow_api.call("GET", f"/{integration_id}/settings/").json()["sync_invoices"] \
        is False


def test_reading_with_the_ui_cookie_still_works(airflow_api: AirflowApi,
                                                books: Callable[..., int]) -> None:
    integration_id = books()
    for path in (f"/{integration_id}/settings/", f"/{integration_id}/errors/"):
        assert cookie_only(airflow_api, "GET", path).status_code == 200


def test_no_credentials_at_all_is_still_401(airflow_api: AirflowApi,
                                            books: Callable[..., int]) -> None:
    integration_id = books()
    response = airflow_api.call("POST", f"/{integration_id}/trigger-sync/", user=None)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


# -- the authorization code never reaches a log -----------------------------------------------

def consent(api: AirflowApi, integration_id: int) -> tuple[str, str]:
    url = api.call("GET", "/auth/", params={"integration_id": integration_id}).json()["url"]
    return api.consent(url)


def logged_after(api: AirflowApi, offset: int, needle: str, timeout: float = 10) -> str:
    """What the api-server logged since `offset`, once a line with `needle` is there."""
    deadline = time.monotonic() + timeout
    while True:
        text = api.log.read_bytes()[offset:].decode(errors="replace")
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


@pytest.mark.parametrize("outcome", ["connected", "refused-code"])
def test_the_code_of_a_get_callback_is_not_in_the_api_server_log(
        airflow_api: AirflowApi, books: Callable[..., int], outcome: str) -> None:
    integration_id = books()
    code, state = consent(airflow_api, integration_id)
    if outcome == "refused-code":
        code = f"never-issued-{secrets.token_hex(8)}"
    offset = airflow_api.log.stat().st_size

    response = airflow_api.call("GET", "/oauth-callback/", user=None,
                                params={"code": code, "state": state})

    assert response.status_code == (200 if outcome == "connected" else 400), response.text
    logged = logged_after(airflow_api, offset, "oauth-callback/")
    access = [line for line in logged.splitlines() if "oauth-callback/" in line]
    assert access, f"the access log did not show the request:\n{logged[-2000:]}"
    # Redacted by the plugin; the access log then URL-encodes what it prints.
    assert re.search(r"code=(\*\*\*|%2A%2A%2A)&state=(\*\*\*|%2A%2A%2A)", access[0]), access
    assert code not in logged and state not in logged
    assert code not in airflow_api.log.read_text(errors="replace")


# -- OAuth states across a key rotation ---------------------------------------------------------

def test_a_state_issued_before_a_key_rotation_still_connects(
        airflow_api: AirflowApi, books: Callable[..., int]) -> None:
    """The api-server runs with the new key first and the previous one still listed; a state
    the previous deployment signed a minute ago (with the previous key) is still good."""
    integration_id = books()
    code, _ = consent(airflow_api, integration_id)
    before_rotation = sign_state(integration_id,
                                 TokenCipher([airflow_api.previous_key]).signing_key)

    response = airflow_api.call("GET", "/oauth-callback/", user=None,
                                params={"code": code, "state": before_rotation})

    assert response.status_code == 200, response.text
    assert LedgerHook().integrations.get(integration_id).status == IntegrationStatus.CONNECTED


def test_a_state_of_a_key_no_longer_listed_is_refused(airflow_api: AirflowApi,
                                                      books: Callable[..., int]) -> None:
    from cryptography.fernet import Fernet

    integration_id = books()
    code, _ = consent(airflow_api, integration_id)
    retired = sign_state(integration_id,
                         TokenCipher([Fernet.generate_key().decode()]).signing_key)
    response = airflow_api.call("GET", "/oauth-callback/", user=None,
                                params={"code": code, "state": retired})
    assert response.status_code == 400
    assert response.json() == {"detail": "OAuth state signature is invalid; start the "
                                         "connection again"}
    assert LedgerHook().integrations.get(integration_id).status == \
        IntegrationStatus.DISCONNECTED


def test_new_states_are_signed_with_the_newest_key(airflow_api: AirflowApi,
                                                   books: Callable[..., int]) -> None:
    from hubspot_ledger.oauth_state import verify_state

    integration_id = books()
    url = airflow_api.call("GET", "/auth/", params={"integration_id": integration_id}).json()
    state = parse_qs(urlparse(url["url"]).query)["state"][0]
    newest = TokenCipher([airflow_api.env["HUBSPOT_LEDGER_FERNET_KEYS"].split(",")[0]])
    assert verify_state(state, bytes(newest.signing_key)).integration_id == integration_id
