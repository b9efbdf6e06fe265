"""Associations v4: batch read (per-input paging, 207 for inputs without associations) and the
per-record list. Links to archived records are hidden, as the recycle bin hides them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubspot_ledger_tools.sandbox import errors
from hubspot_ledger_tools.sandbox.api_crm import json_body, portal_of, sandbox_of
from hubspot_ledger_tools.sandbox.associations import v4_types
from hubspot_ledger_tools.sandbox.records import PortalData
from hubspot_ledger_tools.sandbox.schema import ObjectType, resolve
from hubspot_ledger_tools.sandbox.timefmt import iso, now_ms

router = APIRouter()

BATCH_MAX = 1_000
LIST_DEFAULT = LIST_MAX = 500


def _targets(data: PortalData, from_type: ObjectType, from_id: int,
             to_type: ObjectType) -> list[tuple[int, list[int]]]:
    """(to id, type ids) of a record's live associations, by to id."""
    source = data.tables[from_type.name].records.get(from_id)
    if source is None or source.archived:
        return []
    targets = data.tables[to_type.name].records
    linked = data.linked(from_type.name, from_id, to_type.name)
    return sorted((to_id, type_ids) for to_id, type_ids in linked.items()
                  if to_id in targets and not targets[to_id].archived)


def _page(targets: list[tuple[int, list[int]]], after: str | None,
          size: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page of targets from cursor `after` (the first to id of the page) and the next one."""
    start = int(after) if after and after.isdigit() else 0
    remaining = [t for t in targets if t[0] >= start]
    page = remaining[:size]
    next_after = str(remaining[size][0]) if len(remaining) > size else None
    return [{"toObjectId": to_id, "associationTypes": v4_types(type_ids)}
            for to_id, type_ids in page], next_after


def _types(request: Request, from_name: str, to_name: str
           ) -> tuple[ObjectType, ObjectType] | JSONResponse:
    from_type, to_type = resolve(from_name), resolve(to_name)
    if from_type is None:
        return errors.unknown_type(request, from_name)
    if to_type is None:
        return errors.unknown_type(request, to_name)
    return from_type, to_type


@router.post("/crm/v4/associations/{from_type}/{to_type}/batch/read")
async def batch_read(request: Request, from_type: str, to_type: str) -> Response:
    started = now_ms()
    types = _types(request, from_type, to_type)
    if isinstance(types, JSONResponse):
        return types
    source, target = types
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
    sb = sandbox_of(request)
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    with sb.lock:
        data = portal_of(request).data
        size = sb.config.association_page_size
        for item in inputs:
            item = item if isinstance(item, dict) else {"id": item}
            key = str(item.get("id", ""))
            targets = _targets(data, source, int(key), target) if key.isdigit() else []
            if not targets:
                failures.append(_no_associations(source, target, key))
                continue
            page, next_after = _page(targets, item.get("after"), size)
            result: dict[str, Any] = {"from": {"id": key}, "to": page}
            if next_after is not None:
                result["paging"] = {"next": {"after": next_after}}
            results.append(result)
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if failures:
        answer["numErrors"] = len(failures)
        answer["errors"] = failures
    answer["startedAt"], answer["completedAt"] = iso(started), iso(now_ms())
    return JSONResponse(answer, status_code=207 if failures else 200)


def _no_associations(source: ObjectType, target: ObjectType, key: str) -> dict[str, Any]:
    return {"status": "error", "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "message": f"No {target.singular} is associated with {source.singular} {key}.",
            "context": {"fromObjectId": [key], "fromObjectType": [source.singular],
                        "toObjectType": [target.singular]},
            "errors": [], "links": {}}


@router.get("/crm/v4/objects/{from_type}/{object_id}/associations/{to_type}")
async def list_for_record(request: Request, from_type: str, object_id: str,
                          to_type: str) -> Response:
    types = _types(request, from_type, to_type)
    if isinstance(types, JSONResponse):
        return types
    source, target = types
    try:
        limit = int(request.query_params.get("limit") or LIST_DEFAULT)
    except ValueError:
        return errors.validation_error(request, "limit must be an integer")
    limit = max(1, min(limit, LIST_MAX))
    sb = sandbox_of(request)
    with sb.lock:
        data = portal_of(request).data
        targets = _targets(data, source, int(object_id), target) if object_id.isdigit() else []
        page, next_after = _page(targets, request.query_params.get("after"), limit)
    answer: dict[str, Any] = {"results": page}
    if next_after is not None:
        link = str(request.url.include_query_params(after=next_after))
        answer["paging"] = {"next": {"after": next_after, "link": link}}
    return JSONResponse(answer)
