"""The request guard and the admin rule, in-process (the api-server tests cover them end to
end): an ASGI app is a coroutine, so the guard is driven here with real ASGI messages."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from starlette.types import Message, Receive, Scope, Send

from hubspot_ledger.api.guard import RequestGuard, redact_query

with warnings.catch_warnings():
    # Airflow's api-server modules import starlette's test client (through svcs), which warns
    # about its httpx; the api-server itself never shows it. Not ours to fix.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from hubspot_ledger.api.auth import ADMIN_ROLES_ENV, is_admin, role_names

pytestmark = pytest.mark.unit


def drive(app: Any, *, body: list[bytes], headers: list[tuple[bytes, bytes]] | None = None,
          query: bytes = b"", path: str = "/x", webhook_max_body: int = 20
          ) -> tuple[list[Message], Scope]:
    scope: Scope = {"type": "http", "method": "POST", "path": path, "query_string": query,
                    "headers": headers or []}
    incoming = [{"type": "http.request", "body": chunk, "more_body": i < len(body) - 1}
                for i, chunk in enumerate(body)]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(RequestGuard(app, max_body=10, webhook_max_body=webhook_max_body)(
        scope, receive, send))
    return sent, scope


def answer_of(sent: list[Message]) -> tuple[int, Any]:
    return sent[0]["status"], json.loads(sent[1]["body"])


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": message["body"]})


async def broken(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("duplicate key value (access_token)=(gAAAA-secret)\nDETAIL: more")


def test_hubspots_webhook_calls_may_be_larger_than_the_other_routes_bodies() -> None:
    """Issue 14: a batch of 100 events with property values is far more than a settings
    update, so the webhook target has a limit of its own (1 MiB in production)."""
    path = "/api/integrations/hubspot/webhooks/"
    sent, _ = drive(echo, body=[b"0123456789", b"0123456789"], path=path)
    assert sent[1]["body"] == b"01234567890123456789"
    over, _ = drive(echo, body=[b"1"], headers=[(b"content-length", b"21")], path=path)
    assert answer_of(over)[0] == 413 and "larger than" in answer_of(over)[1]["detail"]
    elsewhere, _ = drive(echo, body=[b"0123456789", b"0"], path="/api/integrations/hubspot/7/")
    assert answer_of(elsewhere)[0] == 413


def test_the_body_reaches_the_app_whole() -> None:
    sent, _ = drive(echo, body=[b"12345", b"67890"])
    assert sent[1]["body"] == b"1234567890"


def test_a_body_over_the_limit_is_413_however_it_comes() -> None:
    declared, _ = drive(echo, body=[b"1"], headers=[(b"content-length", b"11")])
    streamed, _ = drive(echo, body=[b"123456", b"789012"])
    for sent in (declared, streamed):
        status, body = answer_of(sent)
        assert status == 413 and "larger than" in body["detail"]
        assert (b"connection", b"close") in sent[0]["headers"]


def test_a_bad_content_length_is_400() -> None:
    status, body = answer_of(drive(echo, body=[b""], headers=[(b"content-length", b"x")])[0])
    assert status == 400 and "Content-Length" in body["detail"]


def test_an_unexpected_exception_is_a_json_500_without_its_message(
        caplog: pytest.LogCaptureFixture) -> None:
    sent, _ = drive(broken, body=[b""])
    status, body = answer_of(sent)
    assert status == 500 and "RuntimeError" in body["detail"]
    assert "secret" not in json.dumps(body)
    assert "RuntimeError: duplicate key value" in caplog.text
    assert "DETAIL" not in caplog.text  # the first line only


def test_oauth_secrets_are_redacted_from_the_scope_once_answered() -> None:
    _, scope = drive(echo, body=[b""], query=b"code=na1-abc&state=s.t&other=1")
    assert scope["query_string"] == b"code=***&state=***&other=1"
    assert redact_query(b"integration_id=7") == b"integration_id=7"


def test_simple_auth_manager_admins_are_admins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ADMIN_ROLES_ENV, raising=False)
    admin = SimpleAuthManagerUser(username="root", role="admin")
    op = SimpleAuthManagerUser(username="op", role="op")
    assert is_admin(admin) and not is_admin(op)
    monkeypatch.setenv(ADMIN_ROLES_ENV, "admin,op")
    assert is_admin(op)


def test_a_role_list_shaped_like_fabs_is_read_too() -> None:
    """FAB's users carry `roles` (objects with a `name`); FAB cannot be installed from the
    pinned set (README "Security"), so this is its shape only, not FAB itself."""

    class Role:
        def __init__(self, name: str) -> None:
            self.name = name

    class FabShaped(SimpleAuthManagerUser):
        def __init__(self, roles: list[Role]) -> None:
            super().__init__(username="fab", role=None)
            self.roles = roles

    assert role_names(FabShaped([Role("Admin"), Role("User")])) == {"Admin", "User"}
    assert is_admin(FabShaped([Role("Admin")]))
    assert not is_admin(FabShaped([Role("User")]))
    assert not is_admin(SimpleAuthManagerUser(username="nobody", role=None))
