"""CRM v3 objects (list, read, batch read, search), account details and deal pipelines."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubspot_ledger_tools.sandbox import errors
from hubspot_ledger_tools.sandbox.records import Record, Table
from hubspot_ledger_tools.sandbox.render import (
    inline_associations,
    property_names,
    render,
    selected,
)
from hubspot_ledger_tools.sandbox.schema import (
    DEAL_STAGES,
    RENEWAL_CLOSED,
    RENEWAL_STAGES,
    ObjectType,
    resolve,
)
from hubspot_ledger_tools.sandbox.search import SearchError, parse
from hubspot_ledger_tools.sandbox.state import Portal, Sandbox
from hubspot_ledger_tools.sandbox.timefmt import iso, ms_of, now_ms

router = APIRouter()

LIST_MAX, LIST_DEFAULT, BATCH_MAX = 100, 10, 100
PIPELINE_CREATED = ms_of(2022, 6, 1)
RENEWALS = "renewals"


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def portal_of(request: Request) -> Portal:
    """The portal of the caller's token (the middleware let only valid tokens through)."""
    portal = sandbox_of(request).portal(getattr(request.state, "portal_id", None))
    if portal is None:
        raise LookupError("no portal for this request")
    return portal


async def json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _flag(value: str | None) -> bool:
    return (value or "false").strip().lower() == "true"


def _association_types(request: Request) -> list[ObjectType]:
    names = property_names(request.query_params.getlist("associations")) or []
    return [t for t in (resolve(n) for n in names) if t is not None]


def _rendered(portal: Portal, table: Table, record: Record, names: list[str],
              history: list[str] | None, assoc: list[ObjectType]) -> dict[str, Any]:
    inline = inline_associations(portal.data, table.otype, record.id, assoc) if assoc else None
    return render(record, table, names, history, inline)


@router.get("/crm/v3/objects/{object_type}")
async def list_objects(request: Request, object_type: str) -> Response:
    otype = resolve(object_type)
    if otype is None:
        return errors.unknown_type(request, object_type)
    query = request.query_params
    try:
        limit = int(query.get("limit") or LIST_DEFAULT)
        after = int(query.get("after") or 0)
    except ValueError:
        return errors.validation_error(request, "limit and after must be integers")
    if not 1 <= limit <= LIST_MAX:
        return errors.validation_error(
            request, f"limit must be between 1 and {LIST_MAX}, got {limit}")
    archived = _flag(query.get("archived"))
    properties = property_names(query.getlist("properties"))
    history = property_names(query.getlist("propertiesWithHistory"))
    assoc = _association_types(request)
    sb = sandbox_of(request)
    with sb.lock:
        portal = portal_of(request)
        table = portal.data.table(otype)
        names = selected(table, properties)
        records, next_after = table.page(after, limit, archived)
        results = [_rendered(portal, table, r, names, history, assoc) for r in records]
    body: dict[str, Any] = {"results": results}
    if next_after is not None:
        link = str(_as_sent(request).include_query_params(after=str(next_after)))
        body["paging"] = {"next": {"after": str(next_after), "link": link}}
    return JSONResponse(body)


def _as_sent(request: Request) -> URL:
    """The URL as the client sent it: a dated call's paging link stays in its family."""
    sent = getattr(request.state, "path_sent", None)
    return request.url.replace(path=sent) if sent else request.url


def _not_found(request: Request, object_id: str) -> JSONResponse:
    message = "resource not found" if object_id.isdigit() else \
        "Object not found.  objectId are usually numeric."
    return errors.error_response(request, 404, message, "OBJECT_NOT_FOUND",
                                 context={"id": [object_id]})


def _find(table: Table, key: str, id_property: str | None) -> Record | None:
    if id_property and id_property != "hs_object_id":
        otype = table.otype
        return next((r for r in table if str(r.get(id_property, otype)) == key), None)
    return table.records.get(int(key)) if key.isdigit() else None


@router.get("/crm/v3/objects/{object_type}/{object_id}")
async def read_object(request: Request, object_type: str, object_id: str) -> Response:
    otype = resolve(object_type)
    if otype is None:
        return errors.unknown_type(request, object_type)
    query = request.query_params
    archived = _flag(query.get("archived"))
    sb = sandbox_of(request)
    with sb.lock:
        portal = portal_of(request)
        table = portal.data.table(otype)
        record = _find(table, object_id, query.get("idProperty"))
        if record is None or record.archived != archived:
            return _not_found(request, object_id)
        names = selected(table, property_names(query.getlist("properties")))
        body = _rendered(portal, table, record, names,
                         property_names(query.getlist("propertiesWithHistory")),
                         _association_types(request))
    return JSONResponse(body)


@router.post("/crm/v3/objects/{object_type}/batch/read")
async def batch_read(request: Request, object_type: str) -> Response:
    started = now_ms()
    otype = resolve(object_type)
    if otype is None:
        return errors.unknown_type(request, object_type)
    body = await json_body(request)
    if body is None:
        return errors.invalid_json(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        return errors.validation_error(request, "inputs is required and must be a list")
    request.state.log_extra = {"inputs": len(inputs)}
    if len(inputs) > BATCH_MAX:
        return errors.validation_error(
            request, f"Batch input limit exceeded: {len(inputs)} inputs; the maximum is "
                     f"{BATCH_MAX}")
    archived = _flag(request.query_params.get("archived"))
    ids = list(dict.fromkeys(str((i or {}).get("id", "")) if isinstance(i, dict) else str(i)
                             for i in inputs))
    sb = sandbox_of(request)
    with sb.lock:
        portal = portal_of(request)
        table = portal.data.table(otype)
        names = selected(table, body.get("properties") or None)
        history = body.get("propertiesWithHistory") or None
        results, missing = [], []
        for key in ids:
            record = _find(table, key, body.get("idProperty"))
            if record is None or record.archived != archived:
                missing.append(key)
            else:
                results.append(render(record, table, names, history))
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if missing:
        answer["numErrors"] = 1
        answer["errors"] = [{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {otype.label} objects, they may be deleted or not "
                       "exist. Check that ids are valid.",
            "context": {"ids": missing}, "errors": [], "links": {}}]
    answer["startedAt"], answer["completedAt"] = iso(started), iso(now_ms())
    return JSONResponse(answer, status_code=207 if missing else 200)


@router.post("/crm/v3/objects/{object_type}/search")
async def search(request: Request, object_type: str) -> Response:
    otype = resolve(object_type)
    if otype is None:
        return errors.unknown_type(request, object_type)
    body = await json_body(request)
    if body is None:
        return errors.invalid_json(request)
    request.state.log_extra = {"body": body}
    sb = sandbox_of(request)
    with sb.lock:
        portal = portal_of(request)
        table = portal.data.table(otype)
        try:
            wanted = parse(body, otype, table, portal.data, sb.config.search_cap)
        except SearchError as exc:
            return errors.validation_error(request, str(exc))
        ids = sb.search_ids(portal, table, wanted)
        names = selected(table, wanted.properties)
        page = ids[wanted.after:wanted.after + wanted.limit]
        results = [render(table.records[i], table, names) for i in page]
    answer: dict[str, Any] = {"total": len(ids), "results": results}
    if wanted.limit and wanted.after + wanted.limit < len(ids):
        answer["paging"] = {"next": {"after": str(wanted.after + wanted.limit)}}
    return JSONResponse(answer)


@router.get("/account-info/v3/details")
@router.get("/account-info/2026-03/details")
async def account_details(request: Request) -> Response:
    settings = portal_of(request).settings
    offset = settings.utc_offset_ms // 60_000
    sign = "-" if offset < 0 else "+"
    return JSONResponse({
        "portalId": settings.portal_id, "accountType": settings.account_type,
        "timeZone": settings.time_zone, "companyCurrency": settings.currency,
        "additionalCurrencies": [c for c in settings.additional_currencies
                                 if c != settings.currency],
        "utcOffset": f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}",
        "utcOffsetMilliseconds": settings.utc_offset_ms, "uiDomain": settings.ui_domain,
        "dataHostingLocation": settings.data_hosting_location})


def _pipeline(pipeline_id: str = "default") -> dict[str, Any]:
    stamp = iso(PIPELINE_CREATED)
    label, order, stage_list, closed = (
        ("Sales Pipeline", 0, DEAL_STAGES, ("closedwon", "closedlost"))
        if pipeline_id == "default" else ("Renewals", 1, RENEWAL_STAGES, RENEWAL_CLOSED))
    stages = [{"label": label, "displayOrder": order, "id": stage_id,
               "metadata": {"isClosed": str(stage_id in closed).lower(),
                            "probability": probability},
               "createdAt": stamp, "updatedAt": stamp, "archived": False,
               "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}
              for order, (stage_id, label, probability) in enumerate(stage_list)]
    return {"label": label, "displayOrder": order, "id": pipeline_id, "stages": stages,
            "createdAt": stamp, "updatedAt": stamp, "archived": False}


def _deal_pipeline_ids(request: Request) -> tuple[str, ...]:
    """The deal pipelines served: HubSpot's default, and renewals (config `pipelines=two`, or
    a portal generated with `beyond`)."""
    two = sandbox_of(request).config.pipelines == "two" or portal_of(request).settings.beyond
    return ("default", RENEWALS) if two else ("default",)


@router.get("/crm/v3/pipelines/{object_type}")
async def pipelines(request: Request, object_type: str) -> Response:
    otype = resolve(object_type)
    if otype is None:
        return errors.unknown_type(request, object_type)
    found = [_pipeline(p) for p in _deal_pipeline_ids(request)] if otype.name == "deals" else []
    return JSONResponse({"results": found})


@router.get("/crm/v3/pipelines/{object_type}/{pipeline_id}")
async def pipeline(request: Request, object_type: str, pipeline_id: str) -> Response:
    otype = resolve(object_type)
    if otype is None:
        return errors.unknown_type(request, object_type)
    if otype.name != "deals" or pipeline_id not in _deal_pipeline_ids(request):
        return errors.error_response(request, 404, f"Pipeline {pipeline_id} not found",
                                     "OBJECT_NOT_FOUND")
    return JSONResponse(_pipeline(pipeline_id))
