"""Records as HubSpot writes them: string (or null) property values, ISO datetimes, and only
the properties asked for (plus the three every record carries) or the type's defaults."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hubspot_ledger_tools.sandbox.associations import BY_ID
from hubspot_ledger_tools.sandbox.records import PortalData, Record, Table, Value
from hubspot_ledger_tools.sandbox.schema import Kind, ObjectType
from hubspot_ledger_tools.sandbox.timefmt import iso


def property_names(values: Iterable[str] | None) -> list[str] | None:
    """`properties` as a query parameter: repeated and/or comma separated."""
    if values is None:
        return None
    names = [n.strip() for v in values for n in str(v).split(",") if n.strip()]
    return names or None


def value_text(value: Value | None, kind: Kind | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and kind is Kind.DATETIME:
        return iso(value)
    return str(value)


def selected(table: Table, properties: Sequence[str] | None) -> list[str]:
    otype = table.otype
    if properties is None:
        return sorted(otype.defaults)
    # Unknown names are dropped silently, as HubSpot does; known but unset ones come back null.
    return sorted({p for p in properties if table.knows(p)} | set(otype.always))


def render(record: Record, table: Table, names: Sequence[str],
           history: Sequence[str] | None = None,
           associations: dict[str, Any] | None = None) -> dict[str, Any]:
    otype = table.otype
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": {n: value_text(record.get(n, otype), otype.kind(n)) for n in names},
        "createdAt": iso(record.created),
        "updatedAt": iso(record.updated),
        "archived": record.archived,
    }
    if record.archived and record.archived_at is not None:
        body["archivedAt"] = iso(record.archived_at)
    if history:
        body["propertiesWithHistory"] = _history(record, table, history)
    if associations:
        body["associations"] = associations
    return body


def _history(record: Record, table: Table, names: Sequence[str]) -> dict[str, Any]:
    otype = table.otype
    found: dict[str, Any] = {}
    for name in names:
        if not table.knows(name):
            continue
        text = value_text(record.get(name, otype), otype.kind(name))
        found[name] = [] if text is None else [
            {"value": text, "timestamp": iso(record.updated), "sourceType": "CRM_UI"}]
    return found


def inline_associations(data: PortalData, otype: ObjectType, record_id: int,
                        to_types: Sequence[ObjectType]) -> dict[str, Any]:
    """The `associations` of a v3 object read: `{"companies": {"results": [{id, type}]}}`."""
    found: dict[str, Any] = {}
    for to_type in to_types:
        targets = data.tables[to_type.name].records
        results = []
        for to_id, type_ids in data.linked(otype.name, record_id, to_type.name).items():
            target = targets.get(to_id)
            if target is None or target.archived:
                continue
            for type_id in sorted(type_ids, key=lambda t: BY_ID[t].label is None):
                results.append({"id": str(to_id), "type": BY_ID[type_id].v3_name})
        if results:
            found[to_type.inline_key] = {"results": results}
    return found
