"""What happens around every HubSpot call, in HubSpot's order: correlation id, request log,
injected faults, bearer auth, scopes, the portal's rate limits, rate-limit headers. A `drip`
fault slows the answer's body down whatever it is (the real one or an injected one).

A plain ASGI middleware, outermost, so that it sees uvicorn's own `send` — the only way to drop
a connection without answering (the `reset` fault).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubspot_ledger_tools.sandbox import errors
from hubspot_ledger_tools.sandbox.faults import FaultRule
from hubspot_ledger_tools.sandbox.oauth import AccessToken
from hubspot_ledger_tools.sandbox.requestlog import masked_query
from hubspot_ledger_tools.sandbox.routing import Route, canonical_path, classify
from hubspot_ledger_tools.sandbox.state import Sandbox
from hubspot_ledger_tools.sandbox.timefmt import iso, now_ms

INVALID_AUTH = ("Authentication credentials not found. This API supports OAuth 2.0 "
                f"authentication and you can find more details at {errors.DOCS_OAUTH}")
MISSING_SCOPES = ("This app hasn't been granted all required scopes to make this call. Read "
                  f"more about required scopes here: {errors.SCOPES_LINK}.")


def bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = scope["path"]
        method = scope["method"]
        route = classify(method, sent)
        path = canonical_path(sent)  # a dated CRM call goes to its legacy handler
        if path != sent:
            scope = {**scope, "path": path, "raw_path": path.encode(),
                     "state": {**scope.get("state", {}), "path_sent": sent}}
        if route.kind == "admin":
            await self.app(scope, receive, send)
            return
        await self._hubspot_call(scope, receive, send, method, route)

    async def _hubspot_call(self, scope: Scope, receive: Receive, send: Send, method: str,
                            route: Route) -> None:
        sb = self.sandbox
        correlation = errors.new_correlation_id()
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation
        token_text = bearer(Headers(scope=scope))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)
        started = time.perf_counter()
        with sb.lock:
            token = sb.oauth.access_tokens.get(token_text) if token_text else None
            portal_id = token.portal_id if token else None
            if route.endpoint == "GET /oauth/authorize":
                portal_id = _int(dict(query).get("portal_id")) or sb.default_portal_id
            entry = sb.log.start(method=method, path=route.path, query=masked_query(query),
                                 endpoint=route.endpoint, object_type=route.object_type,
                                 to_object_type=route.to_object_type, portal_id=portal_id,
                                 api_version=route.api_version)
            fired = [rule for rule in sb.faults
                     if rule.matches(method, route, portal_id) and rule.count_and_check()]
        extra_headers: list[tuple[bytes, bytes]] = [
            (b"x-hubspot-correlation-id", correlation.encode())]
        status_seen: dict[str, int] = {}
        drip = next((rule for rule in fired if rule.action == "drip"), None)
        out = send if drip is None else _dripping(send, drip.drip_bytes, drip.drip_interval)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
                message = {**message,
                           "headers": [*message.get("headers", []), *extra_headers]}
            await out(message)

        try:
            response = await self._faults(fired, route, token, correlation, send, entry)
            if response == "dropped":
                return
            if response is None and route.kind == "api":
                response = self._admit(route, token_text, token, correlation, extra_headers)
            await self._latency(route, entry)
            if isinstance(response, Response):
                await response(scope, receive, send_with_headers)
                return
            state["portal_id"] = portal_id
            state["token"] = token
            await self.app(scope, receive, send_with_headers)
        finally:
            entry["status"] = status_seen.get("status")
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            entry.update(state.get("log_extra") or {})

    async def _latency(self, route: Route, entry: dict[str, Any]) -> None:
        """HubSpot's time to answer (latency.py), when switched on: awaited, so the other
        requests go on meanwhile. Logged as `latency_ms`."""
        sb = self.sandbox
        if not sb.config.latency:
            return
        delay = sb.latency.next_delay(route.endpoint)
        entry["latency_ms"] = round(delay * 1000, 3)
        await asyncio.sleep(delay)

    async def _faults(self, fired: list[FaultRule], route: Route, token: AccessToken | None,
                      correlation: str, send: Send,
                      entry: dict[str, Any]) -> Response | str | None:
        if not fired:
            return None
        entry["fault"] = ",".join(rule.id for rule in fired)
        delay = sum(rule.delay for rule in fired)
        if delay > 0:
            await asyncio.sleep(delay)
        for rule in fired:
            if rule.action == "expire_token" and token is not None:
                with self.sandbox.lock:
                    self.sandbox.oauth.expire(token=token.token)
        for rule in fired:
            if rule.action == "reset":
                if await _drop_connection(send):
                    return "dropped"
                raise ConnectionAbortedError("injected reset: no transport to drop; "
                                             "the server answers 500 instead")
            if rule.action == "status":
                return JSONResponse(rule.body if rule.body is not None else
                                    _fault_body(rule, route, correlation),
                                    status_code=rule.status, headers=rule.headers)
            if rule.action == "raw":
                return Response(rule.raw, status_code=rule.status, headers=rule.headers,
                                media_type=rule.content_type)
        return None

    def _admit(self, route: Route, token_text: str | None, token: AccessToken | None,
               correlation: str, headers: list[tuple[bytes, bytes]]) -> JSONResponse | None:
        """Auth, scopes and the rate limit of an API call: a refusal, or None to go on."""
        sb = self.sandbox
        now = now_ms()
        if token is None or token.revoked or not token_text:
            return JSONResponse(errors.error_body(INVALID_AUTH, "INVALID_AUTHENTICATION",
                                                  correlation), status_code=401)
        if token.expires_ms <= now:
            ago = (now - token.expires_ms) // 1000
            return JSONResponse(errors.error_body(
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION", correlation,
                context={"expire time": [iso(token.expires_ms)]}), status_code=401)
        missing = [s for s in route.scopes if s not in token.scopes]
        if missing:
            return JSONResponse(errors.error_body(
                MISSING_SCOPES, "MISSING_SCOPES", correlation,
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": missing}}],
                links={"scopes": errors.SCOPES_LINK}), status_code=403)
        with sb.lock:
            portal = sb.portal(token.portal_id)
            if portal is None:
                return JSONResponse(errors.error_body(INVALID_AUTH, "INVALID_AUTHENTICATION",
                                                      correlation), status_code=401)
            config = sb.config
            if route.search:
                # Search has its own per-second budget and sends no rate-limit headers.
                allowed, _ = portal.limits.search.take(config.search_rate, 1.0)
            else:
                allowed, remaining = portal.limits.general.take(config.rate_limit,
                                                                config.rate_window)
                headers.extend([
                    (b"x-hubspot-ratelimit-max", str(config.rate_limit).encode()),
                    (b"x-hubspot-ratelimit-remaining", str(remaining).encode()),
                    (b"x-hubspot-ratelimit-interval-milliseconds",
                     str(int(config.rate_window * 1000)).encode())])
        if not allowed:
            return JSONResponse(errors.rate_limit_body(route.search, correlation),
                                status_code=429)
        return None


def _fault_body(rule: FaultRule, route: Route, correlation: str) -> dict[str, Any]:
    status = rule.status
    if status == 429:
        return errors.rate_limit_body(route.search, correlation, rule.policy)
    if status >= 500:
        return errors.server_error_body(status, correlation)
    category, message = {
        400: ("VALIDATION_ERROR", "Invalid request (injected by the sandbox)"),
        401: ("INVALID_AUTHENTICATION", INVALID_AUTH),
        403: ("MISSING_SCOPES", MISSING_SCOPES),
        404: ("OBJECT_NOT_FOUND", "resource not found"),
        423: ("LOCKED", "The resource is locked; retry after at least 2 seconds"),
    }.get(status, ("VALIDATION_ERROR", f"HTTP {status} (injected by the sandbox)"))
    return errors.error_body(message, category, correlation)


def _dripping(send: Send, size: int, interval: float) -> Send:
    """`send` with every body sent `size` bytes at a time, `interval` seconds apart (headers go
    at once). Stops as soon as the client has gone: uvicorn then drops what is sent anyway."""
    cycle = getattr(send, "__self__", None)

    async def drip(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        for start in range(0, len(body), size):
            if getattr(cycle, "disconnected", False):
                return
            if start:
                await asyncio.sleep(interval)
            last = start + size >= len(body)
            await send({"type": "http.response.body", "body": body[start:start + size],
                        "more_body": more or not last})
        if not body:
            await send(message)
    return drip


async def _drop_connection(send: Send) -> bool:
    """Close the client's connection without a response (RST where the platform allows).

    uvicorn's `send` is a bound method of its request cycle, which holds the transport.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError, TypeError):
            # Linger 0: close() sends RST, the client sees "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let uvicorn notice the disconnect before this call returns, so it does not try to answer.
    for _ in range(3):
        await asyncio.sleep(0)
    return True


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
