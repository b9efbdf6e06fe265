"""The FastAPI app of the integration endpoints, and how failures become JSON.

Every failure answers `{"detail": "<one line saying what is wrong and what to do>"}`: the
messages are the same ones the CLI prints (UserFacingError and friends never carry a token).
An exception nothing else answers is a 500 in the same shape, never Starlette's plain-text one
(guard.py catches what escapes even that). The app is served behind `guard.RequestGuard`
(body limit, redacted access log): see `hubspot_ledger.api.LazyApp`.

The app's OpenAPI description is served at `/openapi.json` to authenticated Airflow users only;
FastAPI's unauthenticated `/docs` and `/redoc` pages are off (every route under the prefix
needs a user, but the OAuth callback and HubSpot's webhook target, each guarded by what HubSpot
signs: the OAuth state, the webhook's v3 signature).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.sdk.exceptions import AirflowNotFoundException
from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hubspot_ledger.api import routes_connect, routes_integrations, routes_webhooks
from hubspot_ledger.api.auth import any_user
from hubspot_ledger.errors import UserFacingError
from hubspot_ledger.hooks.hubspot import HubSpotError
from hubspot_ledger.load.errors import LedgerSchemaError, LedgerUnavailableError, first_line

log = logging.getLogger(__name__)


def _detail(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status_code)


async def _user_facing(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UserFacingError)
    return _detail(exc.http_status, str(exc))


async def _deployment_problem(request: Request, exc: Exception) -> JSONResponse:
    """The ledger is down, or a connection of the deployment is missing or incomplete: an
    operator must act, the caller can only retry later."""
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's default is a list of objects; ours is the one line every other error is."""
    assert isinstance(exc, RequestValidationError)
    problems: dict[str, None] = {}  # ordered and without repeats
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        problems[f"{where}: {error.get('msg', 'invalid')}"] = None
    return _detail(status.HTTP_422_UNPROCESSABLE_CONTENT,
                   "Invalid request: " + "; ".join(problems))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a cause we know: one JSON line, and the log gets the type and first line
    only (a database error's detail can quote a row, encrypted tokens included)."""
    log.error("%s %s failed unexpectedly: %s: %s", request.method, request.url.path,
              type(exc).__name__, first_line(exc))
    return _detail(status.HTTP_500_INTERNAL_SERVER_ERROR,
                   f"The request failed unexpectedly ({type(exc).__name__}); the api-server log "
                   "has the details. Try again; if it fails again, an operator must look into "
                   "it")


def create_app() -> FastAPI:
    app = FastAPI(
        title="HubSpot ledger integration",
        description="Connect an organization's HubSpot portal, edit its settings, read its "
                    "errors log and queue a sync. Authenticate with an Airflow JWT "
                    "(POST /auth/token) in the Authorization header; the OAuth callback is "
                    "protected by its signed state, HubSpot's webhook calls by their v3 "
                    "signature. An organization's integrations are visible to its members and "
                    "to Airflow admins only.",
        version="1",
        openapi_url=None, docs_url=None, redoc_url=None,
    )

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: Annotated[BaseUser, Depends(any_user)]) -> dict[str, Any]:
        return app.openapi()

    app.include_router(routes_connect.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_integrations.router)
    app.add_exception_handler(UserFacingError, _user_facing)
    for problem in (LedgerUnavailableError, LedgerSchemaError, HubSpotError,
                    AirflowNotFoundException):
        app.add_exception_handler(problem, _deployment_problem)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
    return app
