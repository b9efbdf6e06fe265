"""The admin API under `/_sandbox/`: unauthenticated, for tests and operators on this machine.

Request log, fault rules, reset, portals, record changes, token tricks and run-time config.
Admin calls are neither logged, rate limited nor subject to faults. Record changes send
HubSpot's webhooks when a target URL is configured (webhooks.py; `GET /webhooks` shows what was
sent and how it was answered).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubspot_ledger_tools.sandbox import mutations
from hubspot_ledger_tools.sandbox.api_crm import sandbox_of
from hubspot_ledger_tools.sandbox.config import PortalSettings, parse_scale
from hubspot_ledger_tools.sandbox.schema import ObjectType, resolve
from hubspot_ledger_tools.sandbox.state import Portal, Sandbox
from hubspot_ledger_tools.sandbox.webhooks import Change

router = APIRouter(prefix="/_sandbox")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return await request.json()
    except ValueError:
        return None


def _portal(sb: Sandbox, portal_text: str) -> Portal | None:
    if portal_text == "default":
        return sb.portal(None)
    return sb.portal(int(portal_text)) if portal_text.isdigit() else None


def info(request: Request, sb: Sandbox) -> dict[str, Any]:
    config = sb.config
    return {"base_url": str(request.base_url).rstrip("/"), "client_id": config.client_id,
            "client_secret": config.client_secret, "redirect_uris": config.redirect_uris,
            "scopes": config.scopes, "portal_id": sb.default_portal_id,
            "portals": [p.describe() for p in sb.portals.values()]}


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/info")
async def get_info(request: Request) -> dict[str, Any]:
    sb = sandbox_of(request)
    with sb.lock:
        return info(request, sb)


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return sandbox_of(request).config.to_dict()


@router.patch("/config")
async def patch_config(request: Request) -> Response:
    body = await _body(request)
    if not isinstance(body, dict):
        return _error(400, "send a JSON object of config changes")
    try:
        config = sandbox_of(request).update_config(body)
    except ValueError as exc:
        return _error(400, str(exc))
    return JSONResponse(config.to_dict())


@router.get("/requests")
async def get_requests(request: Request) -> Response:
    query = request.query_params
    sb = sandbox_of(request)
    try:
        since = int(query.get("since") or 0)
        portal_id = int(query["portal_id"]) if query.get("portal_id") else None
        limit = int(query["limit"]) if query.get("limit") else None
    except ValueError:
        return _error(400, "since, portal_id and limit are integers")
    with sb.lock:
        entries = sb.log.select(since, query.get("endpoint"), portal_id,
                                query.get("object_type"), limit)
        return JSONResponse({"results": [dict(e) for e in entries], "last_seq": sb.log.seq})


@router.delete("/requests")
async def clear_requests(request: Request) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        sb.log.clear()
    return Response(status_code=204)


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    sb = sandbox_of(request)
    with sb.lock:
        return {"results": [rule.to_dict() for rule in sb.faults]}


def _rules(body: Any) -> list[dict[str, Any]] | None:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        rules = body.get("rules")
        return rules if isinstance(rules, list) else [body]
    return None


async def _add_faults(request: Request, replace: bool) -> Response:
    rules = _rules(await _body(request))
    if rules is None:
        return _error(400, "send a fault rule, a list of rules or {\"rules\": [...]}")
    sb = sandbox_of(request)
    with sb.lock:
        previous = list(sb.faults)
        if replace:
            sb.faults = []
        try:
            added = sb.add_faults(rules)
        except (ValueError, TypeError) as exc:
            sb.faults = previous
            return _error(400, f"bad fault rule: {exc}")
        return JSONResponse({"results": [rule.to_dict() for rule in added]}, status_code=201)


@router.post("/faults")
async def add_faults(request: Request) -> Response:
    return await _add_faults(request, replace=False)


@router.put("/faults")
async def set_faults(request: Request) -> Response:
    return await _add_faults(request, replace=True)


@router.delete("/faults")
async def clear_faults(request: Request) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        sb.faults = []
    return Response(status_code=204)


@router.delete("/faults/{rule_id}")
async def delete_fault(request: Request, rule_id: str) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        kept = [rule for rule in sb.faults if rule.id != rule_id]
        if len(kept) == len(sb.faults):
            return _error(404, f"no fault rule {rule_id}")
        sb.faults = kept
    return Response(status_code=204)


@router.post("/reset")
async def reset(request: Request) -> Response:
    body = await _body(request)
    if not isinstance(body, dict):
        return _error(400, "send a JSON object (optional seed, scale)")
    sb = sandbox_of(request)
    try:
        # Off the event loop: regenerating a large portal takes seconds.
        await asyncio.to_thread(sb.reset, body.get("seed"), body.get("scale"))
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    with sb.lock:
        return JSONResponse(info(request, sb))


@router.get("/portals")
async def list_portals(request: Request) -> dict[str, Any]:
    sb = sandbox_of(request)
    with sb.lock:
        return {"results": [p.describe() for p in sb.portals.values()]}


@router.post("/portals")
async def add_portal(request: Request) -> Response:
    body = await _body(request)
    if not isinstance(body, dict):
        return _error(400, "send the portal's settings as a JSON object")
    sb = sandbox_of(request)
    known = set(PortalSettings.__dataclass_fields__)
    unknown = set(body) - known
    if unknown:
        return _error(400, f"unknown portal settings: {', '.join(sorted(unknown))}")
    with sb.lock:
        portal_id = int(body.get("portal_id") or max(sb.portals) + 1)
    try:
        parse_scale(body.get("scale", "tiny"))
        settings = PortalSettings(**{**body, "portal_id": portal_id,
                                     "scale": str(body.get("scale", "tiny"))})
        portal = await asyncio.to_thread(sb.add_portal, settings)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    with sb.lock:
        return JSONResponse(portal.describe(), status_code=201)


@router.get("/portals/{portal_text}")
async def get_portal(request: Request, portal_text: str) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        portal = _portal(sb, portal_text)
        if portal is None:
            return _error(404, f"no portal {portal_text}")
        return JSONResponse(portal.describe())


def _target(sb: Sandbox, portal_text: str, type_name: str
            ) -> tuple[Portal, ObjectType] | JSONResponse:
    portal = _portal(sb, portal_text)
    if portal is None:
        return _error(404, f"no portal {portal_text}")
    otype = resolve(type_name)
    if otype is None:
        return _error(404, f"no object type {type_name}")
    return portal, otype


@router.post("/portals/{portal_text}/objects/{type_name}")
async def upsert(request: Request, portal_text: str, type_name: str) -> Response:
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
        return _error(400, "send {\"id\"?, \"properties\": {...}, \"associations\"?: {...}}")
    sb = sandbox_of(request)
    with sb.lock:
        target = _target(sb, portal_text, type_name)
        if isinstance(target, JSONResponse):
            return target
        portal, otype = target
        raw_id = body.get("id")
        try:
            record_id = int(str(raw_id)) if raw_id not in (None, "") else None
            table = portal.data.table(otype)
            current = table.records.get(record_id) if record_id is not None else None
            existed = current is not None
            before = dict(current.props) if current is not None else None
            record = mutations.upsert(portal.data, otype, record_id,
                                      body.get("properties") or {}, body.get("associations"))
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        answer = mutations.describe(portal.data, portal.data.table(otype), record)
        sb.webhooks.record(portal.id, _upsert_changes(otype, record.id, before, record.props,
                                                       body.get("associations") or {}))
    return JSONResponse(answer, status_code=200 if existed else 201)


def _upsert_changes(otype: ObjectType, record_id: int, before: dict[str, Any] | None,
                    after: dict[str, Any], associations: dict[str, Any]) -> list[Change]:
    """What HubSpot's webhooks tell of an upsert: a creation, or each property whose value
    changed (calculated ones too); and the associations it set."""
    if before is None:
        changes = [Change(otype, record_id, "creation")]
    else:
        changed = {name: after.get(name) for name in sorted({*before, *after})
                   if before.get(name) != after.get(name)}
        changes = [Change(otype, record_id, "propertyChange", changed)] if changed else []
    linked: list[tuple[str, int]] = []
    for to_name, entries in associations.items():
        to_type = resolve(to_name)
        if to_type is None:
            continue
        for entry in entries:
            spec = entry if isinstance(entry, dict) else {"id": entry}
            linked.append((to_type.singular, int(str(spec.get("id")))))
    if linked:
        changes.append(Change(otype, record_id, "associationChange", associated=tuple(linked)))
    return changes


@router.get("/portals/{portal_text}/objects/{type_name}/{record_id}")
async def get_record(request: Request, portal_text: str, type_name: str,
                     record_id: int) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        target = _target(sb, portal_text, type_name)
        if isinstance(target, JSONResponse):
            return target
        portal, otype = target
        table = portal.data.table(otype)
        record = table.records.get(record_id)
        if record is None:
            return _error(404, f"no {otype.singular} {record_id}")
        return JSONResponse(mutations.describe(portal.data, table, record))


@router.post("/portals/{portal_text}/objects/{type_name}/{record_id}/archive")
async def archive(request: Request, portal_text: str, type_name: str,
                  record_id: int) -> Response:
    body = await _body(request)
    archived = bool(body.get("archived", True)) if isinstance(body, dict) else True
    sb = sandbox_of(request)
    with sb.lock:
        target = _target(sb, portal_text, type_name)
        if isinstance(target, JSONResponse):
            return target
        portal, otype = target
        record = mutations.archive(portal.data, otype, record_id, archived)
        if record is None:
            return _error(404, f"no {otype.singular} {record_id}")
        sb.webhooks.record(portal.id, [Change(otype, record_id,
                                              "deletion" if archived else "restore")])
        return JSONResponse(mutations.describe(portal.data, portal.data.table(otype), record))


@router.delete("/portals/{portal_text}/objects/{type_name}/{record_id}")
async def delete(request: Request, portal_text: str, type_name: str,
                 record_id: int) -> Response:
    sb = sandbox_of(request)
    with sb.lock:
        target = _target(sb, portal_text, type_name)
        if isinstance(target, JSONResponse):
            return target
        portal, otype = target
        if not mutations.delete(portal.data, otype, record_id):
            return _error(404, f"no {otype.singular} {record_id}")
        sb.webhooks.record(portal.id, [Change(otype, record_id, "deletion")])
    return Response(status_code=204)


@router.get("/webhooks")
async def get_webhooks(request: Request) -> dict[str, Any]:
    """The webhook target, subscriptions, and the calls sent (newest last) with their
    answers (`status`, or `error` for a connection failure or time-out)."""
    sb = sandbox_of(request)
    config = sb.config
    return {"url": config.webhook_url, "subscriptions": config.webhook_subscriptions,
            "app_id": config.app_id, "deliveries": list(sb.webhooks.deliveries)}


@router.delete("/webhooks")
async def clear_webhooks(request: Request) -> Response:
    sandbox_of(request).webhooks.clear()
    return Response(status_code=204)


@router.post("/tokens")
async def mint_tokens(request: Request) -> Response:
    body = await _body(request)
    body = body if isinstance(body, dict) else {}
    sb = sandbox_of(request)
    with sb.lock:
        portal = sb.portal(body.get("portal_id"))
        if portal is None:
            return _error(404, f"no portal {body.get('portal_id')}")
        scopes = body.get("scopes") or sb.config.scopes
        scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
        return JSONResponse(sb.oauth.mint(sb.config, portal.id, scopes), status_code=201)


@router.post("/tokens/revoke")
async def revoke_tokens(request: Request) -> Response:
    body = await _body(request)
    body = body if isinstance(body, dict) else {}
    sb = sandbox_of(request)
    with sb.lock:
        if body.get("refresh_token"):
            count = int(sb.oauth.revoke_refresh(str(body["refresh_token"])))
        else:
            count = sb.oauth.revoke(body.get("portal_id"), bool(body.get("access_tokens")))
    return JSONResponse({"revoked": count})


@router.post("/tokens/expire")
async def expire_tokens(request: Request) -> Response:
    body = await _body(request)
    body = body if isinstance(body, dict) else {}
    sb = sandbox_of(request)
    with sb.lock:
        count = sb.oauth.expire(body.get("portal_id"), body.get("access_token"))
    return JSONResponse({"expired": count})
