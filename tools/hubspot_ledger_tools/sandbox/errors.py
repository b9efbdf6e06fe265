"""HubSpot's error bodies (hubspot-api.md §1.3, §3.3, §3.4) and the JSON responses carrying them."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

DOCS_OAUTH = "https://developers.hubspot.com/docs/methods/auth/oauth-overview"
SCOPES_LINK = "https://developers.hubspot.com/scopes"


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def correlation_id(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", "") or new_correlation_id())


def error_body(message: str, category: str, correlation: str, *,
               context: dict[str, list[str]] | None = None,
               errors: list[dict[str, Any]] | None = None,
               sub_category: str | None = None,
               links: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message,
                            "correlationId": correlation}
    if sub_category:
        body["subCategory"] = sub_category
    if context:
        body["context"] = context
    if errors:
        body["errors"] = errors
    if links:
        body["links"] = links
    body["category"] = category
    return body


def error_response(request: Request, status: int, message: str, category: str,
                   **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(message, category, correlation_id(request), **extra),
                        status_code=status)


def validation_error(request: Request, message: str) -> JSONResponse:
    return error_response(request, 400, message, "VALIDATION_ERROR")


def unknown_type(request: Request, name: str) -> JSONResponse:
    return validation_error(request, f"Unable to infer object type from: {name}")


def invalid_json(request: Request) -> JSONResponse:
    return validation_error(request, "Invalid input JSON: the request body is not valid JSON")


def rate_limit_body(search: bool, correlation: str, policy: str | None = None) -> dict[str, Any]:
    policy = policy or ("SECONDLY" if search else "TEN_SECONDLY_ROLLING")
    message = "You have reached your secondly limit." if policy == "SECONDLY" else \
        f"You have reached your {policy.lower()} limit."
    return {"status": "error", "message": message, "errorType": "RATE_LIMIT",
            "correlationId": correlation, "policyName": policy, "category": "RATE_LIMITS"}


def server_error_body(status: int, correlation: str) -> dict[str, Any]:
    messages = {500: "internal error", 502: "Bad Gateway: the request could not be processed",
                503: "Service Unavailable: please retry", 504: "Gateway Timeout"}
    return {"status": "error",
            "message": messages.get(status, f"HTTP {status} (injected by the sandbox)"),
            "correlationId": correlation, "category": "INTERNAL_ERROR" if status == 500 else
            "SERVICE_UNAVAILABLE"}


def oauth_error(status: str, error: str, description: str, correlation: str) -> dict[str, Any]:
    """The token endpoint's body: RFC 6749 fields plus HubSpot's legacy `status`/`message`."""
    return {"error": error, "error_description": description, "status": status,
            "message": description, "correlationId": correlation}
