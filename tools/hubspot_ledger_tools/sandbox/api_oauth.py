"""OAuth endpoints: the consent page, the token endpoints (v1, v3, 2026-03), token metadata,
introspection and revocation (hubspot-api.md §1)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from hubspot_ledger_tools.sandbox import errors
from hubspot_ledger_tools.sandbox.api_crm import sandbox_of
from hubspot_ledger_tools.sandbox.config import SandboxConfig
from hubspot_ledger_tools.sandbox.oauth import USER_EMAIL, USER_ID, AccessToken, OAuthError
from hubspot_ledger_tools.sandbox.state import Sandbox
from hubspot_ledger_tools.sandbox.timefmt import now_ms

router = APIRouter()

TOKEN_PARAMS = frozenset({"grant_type", "client_id", "client_secret", "code", "redirect_uri",
                          "refresh_token", "code_verifier", "scope"})
NO_STORE = {"Cache-Control": "no-store"}


def _error_page(message: str) -> HTMLResponse:
    text = html.escape(message)
    return HTMLResponse(
        "<!doctype html><html><head><title>HubSpot - Authorization failed</title></head>"
        f"<body><h1>Couldn't complete the connection</h1><p class=\"error\">{text}</p>"
        "<p>Please contact the app developer.</p></body></html>", status_code=400)


def _with_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


@router.get("/oauth/authorize")
@router.get("/oauth/{account_id}/authorize")
async def authorize(request: Request, account_id: str | None = None) -> Response:
    """The consent screen. The simulated user approves at once (or denies, when the config's
    `consent` or the sandbox-only `sandbox_decision` parameter says `deny`)."""
    query = request.query_params
    sb = sandbox_of(request)
    config = sb.config
    client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
    if client_id != config.client_id:
        return _error_page(f"Authorization failed because the client_id '{client_id}' does "
                           "not belong to any app.")
    if redirect_uri not in config.redirect_uris:
        return _error_page(f"Authorization failed as the redirect URL '{redirect_uri}' "
                           "doesn't match the app's registered redirect URL.")
    requested = query.get("scope", "").split()
    if any(s not in requested for s in config.scopes):
        return _error_page("Authorization failed because there is a mismatch between the "
                           "scopes in the install URL and the app's configured scopes.")
    portal_text = query.get("portal_id") or account_id or str(sb.default_portal_id)
    portal = sb.portal(int(portal_text)) if portal_text.isdigit() else None
    if portal is None:
        return _error_page(f"Authorization failed because account {portal_text} does not "
                           "exist.")
    state = query.get("state")
    decision = query.get("sandbox_decision") or config.consent
    if decision == "deny":
        params = {"error": "access_denied",
                  "error_description": "The user denied access to the app"}
        if state is not None:
            params["state"] = state
        return RedirectResponse(_with_query(redirect_uri, params), status_code=302)
    optional = [s for s in query.get("optional_scope", "").split() if s not in requested]
    with sb.lock:
        code = sb.oauth.issue_code(config, redirect_uri, requested + optional, portal.id)
    params = {"code": code}
    if state is not None:
        params["state"] = state
    return RedirectResponse(_with_query(redirect_uri, params), status_code=302)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _oauth_failure(request: Request, exc: OAuthError) -> JSONResponse:
    return JSONResponse(errors.oauth_error(exc.status, exc.error, exc.description,
                                           errors.correlation_id(request)),
                        status_code=400, headers=NO_STORE)


@router.post("/oauth/{version}/token")
async def token(request: Request, version: str) -> Response:
    if version not in ("v1", "v3", "2026-03"):
        return errors.error_response(request, 404, "resource not found", "OBJECT_NOT_FOUND")
    form = await _form(request)
    request.state.log_extra = {"grant_type": form.get("grant_type")}
    query = dict(request.query_params)
    if version != "v1":
        in_query = sorted(TOKEN_PARAMS & set(query))
        if in_query:
            return _oauth_failure(request, OAuthError(
                "invalid_request", "BAD_REQUEST",
                f"The {version} token endpoint requires every parameter in the request body; "
                f"found {', '.join(in_query)} in the query string"))
        params = form
    else:
        params = {**query, **form}  # v1 still took the secret and refresh token as query
    sb = sandbox_of(request)
    try:
        with sb.lock:
            body = sb.oauth.token_request(sb.config, params)
    except OAuthError as exc:
        return _oauth_failure(request, exc)
    return JSONResponse(body, headers=NO_STORE)


def _signed(access: AccessToken, app_id: int) -> dict[str, Any]:
    return {"expiresAt": access.expires_ms, "scopes": "AAEAAAAQ==", "hubId": access.portal_id,
            "userId": USER_ID, "appId": app_id, "signature": "sandbox-signature",
            "scopeToScopeGroupPks": "AAAAQAAAAA==", "newSignature": "sandbox-signature",
            "hublet": "na1", "trialScopes": "", "trialScopeToScopeGroupPks": "",
            "isUserLevel": False, "isPrivateDistribution": False}


def _hub_domain(sb: Sandbox, portal_id: int) -> str:
    portal = sb.portal(portal_id)
    return portal.settings.hub_domain if portal else ""


def _access_info(sb: Sandbox, access: AccessToken, config: SandboxConfig) -> dict[str, Any]:
    return {"token": access.token, "user": USER_EMAIL,
            "hub_domain": _hub_domain(sb, access.portal_id), "scopes": access.scopes,
            "signed_access_token": _signed(access, config.app_id), "hub_id": access.portal_id,
            "app_id": config.app_id, "expires_in": access.expires_in(now_ms()),
            "user_id": USER_ID, "token_type": "access", "is_private_distribution": False}


def _not_found(request: Request, what: str) -> JSONResponse:
    return errors.error_response(request, 404, f"{what} is invalid, expired or revoked",
                                 "OBJECT_NOT_FOUND")


@router.get("/oauth/v1/access-tokens/{token_text}")
async def access_token_info(request: Request, token_text: str) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        access = sb.oauth.access(token_text)
        if access is None or access.expires_ms <= now_ms():
            return _not_found(request, "The access token")
        return JSONResponse(_access_info(sb, access, sb.config))


@router.get("/oauth/v1/refresh-tokens/{token_text}")
async def refresh_token_info(request: Request, token_text: str) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        refresh = sb.oauth.refresh_tokens.get(token_text)
        if refresh is None or refresh.revoked:
            return _not_found(request, "The refresh token")
        return JSONResponse({"token": refresh.token, "user": USER_EMAIL,
                             "hub_domain": _hub_domain(sb, refresh.portal_id),
                             "scopes": refresh.scopes, "hub_id": refresh.portal_id,
                             "client_id": refresh.client_id, "user_id": USER_ID,
                             "token_type": "refresh"})


@router.delete("/oauth/v1/refresh-tokens/{token_text}")
async def delete_refresh_token(request: Request, token_text: str) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        if not sb.oauth.revoke_refresh(token_text):
            return _not_found(request, "The refresh token")
    return Response(status_code=204)


def _client_check(sb: Sandbox, form: dict[str, str]) -> OAuthError | None:
    if not form.get("client_id") or not form.get("client_secret"):
        return OAuthError("invalid_request", "BAD_REQUEST", "missing client_id or client_secret")
    if form["client_id"] != sb.config.client_id:
        return OAuthError("invalid_client", "BAD_CLIENT_ID", "missing or unknown client_id")
    if form["client_secret"] != sb.config.client_secret:
        return OAuthError("invalid_client", "BAD_CLIENT_SECRET",
                          "client_secret does not match the app's client secret")
    return None


def _token_field(form: dict[str, str]) -> str:
    # The spec names the field `token`; the v3 guide's prose says `access_token` or
    # `refresh_token`. Both spellings are accepted.
    return form.get("token") or form.get("access_token") or form.get("refresh_token") or ""


@router.post("/oauth/{version}/token/introspect")
async def introspect(request: Request, version: str) -> Response:
    form = await _form(request)
    sb = sandbox_of(request)
    with sb.lock:
        failure = _client_check(sb, form)
        if failure is not None:
            return _oauth_failure(request, failure)
        text = _token_field(form)
        config = sb.config
        access = sb.oauth.access(text)
        if access is not None and access.expires_ms > now_ms():
            return JSONResponse({
                "active": True, "token": access.token, "hub_id": access.portal_id,
                "user_id": USER_ID, "client_id": access.client_id, "app_id": config.app_id,
                "user": USER_EMAIL, "hub_domain": _hub_domain(sb, access.portal_id),
                "scopes": access.scopes, "signed_access_token": _signed(access, config.app_id),
                "expires_in": access.expires_in(now_ms()), "is_private_distribution": False,
                "token_use": "access_token", "token_type": "Bearer"}, headers=NO_STORE)
        refresh = sb.oauth.refresh_tokens.get(text)
        if refresh is not None and not refresh.revoked:
            return JSONResponse({
                "active": True, "token": refresh.token, "hub_id": refresh.portal_id,
                "user_id": USER_ID, "client_id": refresh.client_id, "app_id": config.app_id,
                "user": USER_EMAIL, "hub_domain": _hub_domain(sb, refresh.portal_id),
                "scopes": refresh.scopes, "token_use": "refresh_token",
                "token_type": "Bearer"}, headers=NO_STORE)
    return JSONResponse({"active": False}, headers=NO_STORE)


@router.post("/oauth/{version}/token/revoke")
async def revoke(request: Request, version: str) -> Response:
    form = await _form(request)
    sb = sandbox_of(request)
    with sb.lock:
        failure = _client_check(sb, form)
        if failure is not None:
            return _oauth_failure(request, failure)
        # RFC 7009: unknown tokens are not an error.
        sb.oauth.revoke_refresh(_token_field(form))
    return Response(status_code=200)
