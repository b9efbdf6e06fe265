"""What every request to the integration endpoints goes through before and after its route:
a bounded body, a JSON answer whatever happens, and no OAuth secret in the access log.

- **Body limit.** Every route takes at most `MAX_BODY_BYTES` (64 KiB; the largest real body,
  a settings update, is a few hundred bytes), but HubSpot's webhook target, which takes
  `WEBHOOK_MAX_BODY_BYTES` (1 MiB: HubSpot batches up to 100 events, and a property change
  carries the property's new value). A declared `Content-Length` above it is refused
  with 413 before a byte of the body is read; a body without one (chunked) is read chunk by
  chunk and refused as soon as it passes the limit, so no more than the limit is ever held.
  The whole body must arrive within `BODY_TIMEOUT_SECONDS` (else 408), so a client dripping
  a body cannot hold a request open. Refusals close the connection (`Connection: close`):
  the rest of the body is never read. The body read here is handed to the route unchanged.
- **Never a bare 500.** An exception no handler answered becomes 500 `{"detail": …}` naming
  only its type; the log gets its type and first line (a database error's detail can quote a
  row, encrypted tokens included), not the value.
- **No code in the access log.** HubSpot's redirect brings the authorization `code` (and the
  `state`) in the query string of `GET /oauth-callback/`, and the api-server's access log
  (Airflow's `HttpAccessLogMiddleware`, which wraps every app and writes the query after the
  response) would print it. Once the request is answered, their values are replaced by `***`
  in the request's ASGI scope, the very dict that middleware reads its query from (Starlette
  hands the same scope down through middlewares and mounts). A front end forwarding them with
  POST (form or JSON) keeps them out of every URL to begin with; that is the recommended path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubspot_ledger.load.errors import first_line

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_PATH_END = "/webhooks"
BODY_TIMEOUT_SECONDS = 30.0
SECRET_QUERY_PARAMETERS = frozenset({"code", "state"})
REDACTED = "***"


class _Refused(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


async def answer(send: Send, status_code: int, detail: str, *, close: bool = False) -> None:
    """Send `{"detail": detail}` with `status_code` (and end the connection with `close`)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def redact_query(query: bytes) -> bytes:
    """`query` with the values of SECRET_QUERY_PARAMETERS replaced by `***`."""
    if not query:
        return query
    text = query.decode("latin-1")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return b"" if any(p in text for p in SECRET_QUERY_PARAMETERS) else query
    if not any(key in SECRET_QUERY_PARAMETERS for key, _ in pairs):
        return query
    return urlencode([(k, REDACTED if k in SECRET_QUERY_PARAMETERS else v)
                      for k, v in pairs], safe="*").encode()


class RequestGuard:
    """The ASGI wrapper of the integration app (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES,
                 webhook_max_body: int = WEBHOOK_MAX_BODY_BYTES,
                 body_timeout: float = BODY_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.max_body = max_body
        self.webhook_max_body = webhook_max_body
        self.body_timeout = body_timeout

    def _limit(self, scope: Scope) -> int:
        path = str(scope.get("path", "")).rstrip("/")
        return self.webhook_max_body if path.endswith(WEBHOOK_PATH_END) else self.max_body

    def _too_large(self, limit: int) -> _Refused:
        return _Refused(413, f"The request body is larger than {limit // 1024} KiB; "
                             "nothing was read or changed")

    def _declared_length(self, scope: Scope) -> int | None:
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _Refused(400, "The Content-Length header is not a number") from None
                if length < 0:
                    raise _Refused(400, "The Content-Length header is negative")
                return length
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, at most `max_body` bytes; None when the client went away."""
        limit = self._limit(scope)
        declared = self._declared_length(scope)
        if declared is not None and declared > limit:
            raise self._too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large(limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(408, f"The request body did not arrive within "
                                f"{self.body_timeout:g} s") from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._guarded(scope, receive, send)
        finally:
            scope["query_string"] = redact_query(scope.get("query_string", b""))

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._read_body(scope, receive)
        except _Refused as refused:
            log.warning("%s %s refused: %s", scope.get("method"), scope.get("path"),
                        refused.detail)
            await answer(send, refused.status_code, refused.detail, close=True)
            return
        if body is None:
            return  # the client left; nobody to answer
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the contract is a JSON answer, not a trace
            log.error("%s %s failed unexpectedly: %s: %s", scope.get("method"),
                      scope.get("path"), type(exc).__name__, first_line(exc))
            if not started:
                await answer(send, 500, f"The request failed unexpectedly "
                                        f"({type(exc).__name__}); the api-server log has the "
                                        "details. Try again; if it fails again, an operator "
                                        "must look into it")
