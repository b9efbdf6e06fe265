"""The sandbox as an ASGI application: FastAPI routes wrapped in the HubSpot-call middleware."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubspot_ledger_tools.sandbox import api_admin, api_associations, api_crm, api_oauth, errors
from hubspot_ledger_tools.sandbox.middleware import SandboxMiddleware
from hubspot_ledger_tools.sandbox.state import Sandbox


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith("/_sandbox"):
        detail = exc.detail if isinstance(exc, HTTPException) else "error"
        return JSONResponse({"status": "error", "message": detail}, status_code=status)
    message = "resource not found" if status == 404 else f"HTTP {status}"
    category = "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR"
    return errors.error_response(request, status, message, category)


def create_app(sandbox: Sandbox) -> SandboxMiddleware:
    api = FastAPI(title="HubSpot sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    api.state.sandbox = sandbox
    for module in (api_admin, api_oauth, api_associations, api_crm):
        api.include_router(module.router)
    api.add_exception_handler(HTTPException, _http_error)
    # Outside FastAPI's own middleware: the reset fault needs uvicorn's `send` itself.
    return SandboxMiddleware(api, sandbox)
