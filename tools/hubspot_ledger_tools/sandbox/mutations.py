"""Changes to a portal's data through the admin API: upsert, archive, delete.

Every change bumps the record's last-modified date to now, as an edit in HubSpot does, and
recomputes what HubSpot calculates (a line item's amounts, a deal's closed flags).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hubspot_ledger_tools.sandbox.associations import BY_ID, PAIRS, link
from hubspot_ledger_tools.sandbox.pricing import line_amounts
from hubspot_ledger_tools.sandbox.records import PortalData, Record, Table, Value
from hubspot_ledger_tools.sandbox.render import render
from hubspot_ledger_tools.sandbox.schema import CREATEDATE, OBJECT_ID, Kind, ObjectType, resolve
from hubspot_ledger_tools.sandbox.timefmt import now_ms, parse_time

PRICING_INPUTS = frozenset({"quantity", "price", "discount", "hs_discount_percentage",
                            "hs_line_item_currency_code"})
# A line item without a currency of its own is in its deal's, else its invoice's.
OWNER_CURRENCIES = (("deals", "deal_currency_code"), ("invoices", "hs_currency"))


def _touch(record: Record) -> None:
    # Strictly later than before, so "modified since" filters always see an edit.
    record.updated = max(now_ms(), record.updated + 1)


def _value(otype: ObjectType, name: str, value: object) -> Value | None:
    if value is None:
        return None
    kind = otype.kind(name)
    if kind in (Kind.DATETIME,):
        ms = parse_time(value)
        if ms is None:
            raise ValueError(f"{name} must be epoch milliseconds or ISO-8601, not {value!r}")
        return ms
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def upsert(data: PortalData, otype: ObjectType, record_id: int | None,
           properties: Mapping[str, Any],
           associations: Mapping[str, Sequence[Any]] | None = None, *,
           portal_currency: str | None = None) -> Record:
    """Create or change a record. `portal_currency`: the currency a line item with none of its
    own, and no deal or invoice that has one, is priced in (else 2 decimals)."""
    table = data.table(otype)
    changes: dict[str, Value | None] = {}
    for name, value in properties.items():
        if name in (CREATEDATE, OBJECT_ID, otype.modified):
            continue  # HubSpot sets these itself
        changes[name] = _value(otype, name, value)
    planned = _planned_links(data, otype, associations or {})
    record = table.records.get(record_id) if record_id is not None else None
    if record is None:
        now = now_ms()
        record = Record(record_id if record_id is not None else table.next_id(), {}, now, now)
    else:
        _touch(record)
    for name, value in changes.items():
        if otype.kind(name) is None:
            table.extra_properties.add(name)
        if value is None:
            record.props.pop(name, None)
        else:
            record.props[name] = value
    for to_name, targets in planned.items():
        data.drop_links(otype.name, record.id, to_name)
        for to_id, primary in targets:
            link(data, otype.name, record.id, to_name, to_id, primary=primary)
    # After the links: a line item's amounts depend on the currency of the deal or invoice it
    # belongs to, which this very call may have set.
    _derive(data, otype, record, changes, portal_currency)
    table.add(record)
    return record


def _planned_links(data: PortalData, otype: ObjectType, associations: Mapping[str, Sequence[Any]]
                   ) -> dict[str, list[tuple[int, bool]]]:
    """Validate `{"companies": ["123", {"id": "456", "primary": true}], …}` before changing
    anything; each listed type's associations are replaced."""
    planned: dict[str, list[tuple[int, bool]]] = {}
    for to_name, entries in associations.items():
        to_type = resolve(to_name)
        if to_type is None or (otype.name, to_type.name) not in PAIRS:
            raise ValueError(f"{otype.name} cannot be associated with {to_name}")
        targets: list[tuple[int, bool]] = []
        for entry in entries:
            spec = entry if isinstance(entry, Mapping) else {"id": entry}
            to_id = int(str(spec.get("id")))
            if to_id not in data.table(to_type).records:
                raise ValueError(f"{to_type.singular} {to_id} does not exist")
            targets.append((to_id, bool(spec.get("primary"))))
        if sum(primary for _, primary in targets) > 1:
            raise ValueError(f"only one {to_type.singular} can be the primary association")
        planned[to_type.name] = targets
    return planned


def _derive(data: PortalData, otype: ObjectType, record: Record,
            changes: Mapping[str, Value | None], portal_currency: str | None) -> None:
    props = record.props
    if otype.name == "line_items" and PRICING_INPUTS & set(changes) and "amount" not in changes:
        props.update(line_amounts(props.get("quantity"), props.get("price"),
                                  props.get("discount"), props.get("hs_discount_percentage"),
                                  _line_currency(data, record) or portal_currency))
    if otype.name == "deals" and "dealstage" in changes:
        stage = props.get("dealstage")
        props["hs_is_closed_won"] = "true" if stage == "closedwon" else "false"
        props["hs_is_closed"] = "true" if stage in ("closedwon", "closedlost") else "false"


def _line_currency(data: PortalData, line: Record) -> str | None:
    """The currency HubSpot rounds a line item's amounts in: its own, else that of a deal or
    invoice it belongs to (None: unknown)."""
    own = line.props.get("hs_line_item_currency_code")
    if own:
        return str(own)
    for type_name, prop in OWNER_CURRENCIES:
        for owner_id in sorted(data.linked("line_items", line.id, type_name)):
            owner = data.table(type_name).records.get(owner_id)
            if owner is not None and owner.props.get(prop):
                return str(owner.props[prop])
    return None


def archive(data: PortalData, otype: ObjectType, record_id: int, archived: bool = True
            ) -> Record | None:
    table = data.table(otype)
    record = table.records.get(record_id)
    if record is None:
        return None
    _touch(record)
    record.archived = archived
    record.archived_at = record.updated if archived else None
    table.version += 1
    data.links_version += 1  # associations to archived records disappear from reads
    return record


def delete(data: PortalData, otype: ObjectType, record_id: int) -> bool:
    table = data.table(otype)
    if record_id not in table.records:
        return False
    table.remove(record_id)
    data.drop_all_links(otype.name, record_id)
    return True


def describe(data: PortalData, table: Table, record: Record) -> dict[str, Any]:
    """A record with every property it has and all its associations (for tests to inspect)."""
    otype = table.otype
    names = sorted({*record.props, *otype.always})
    body = render(record, table, names)
    links: dict[str, list[dict[str, Any]]] = {}
    for (source, target), _pair in PAIRS.items():
        if source != otype.name:
            continue
        found = data.linked(source, record.id, target)
        if found:
            links[target] = [{"id": str(to_id), "typeIds": type_ids,
                              "primary": any(BY_ID[t].label for t in type_ids)}
                             for to_id, type_ids in sorted(found.items())]
    body["associations"] = links
    return body
