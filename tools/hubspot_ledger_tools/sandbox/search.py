"""The CRM search API's request language: filter groups, operators, one sort, a text query.

Limits follow hubspot-api.md §2.4: 5 filter groups × 6 filters (18 in all), limit ≤ 200, a
query ≤ 3,000 characters, and no page reaching past the 10,000th result. Archived records are
never found. Datetimes compare as epoch ms whether the filter says ms or ISO.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hubspot_ledger_tools.sandbox.records import PortalData, Record, Table, Value
from hubspot_ledger_tools.sandbox.schema import CREATEDATE, OBJECT_ID, Kind, ObjectType, resolve
from hubspot_ledger_tools.sandbox.timefmt import parse_time

MAX_GROUPS, MAX_GROUP_FILTERS, MAX_FILTERS = 5, 6, 18
MAX_LIMIT, DEFAULT_LIMIT, MAX_QUERY = 200, 10, 3000
OPERATORS = frozenset({"LT", "LTE", "GT", "GTE", "EQ", "NEQ", "BETWEEN", "IN", "NOT_IN",
                       "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN",
                       "NOT_CONTAINS_TOKEN"})
_TOKEN_SPLIT = re.compile(r"\W+")

Predicate = Callable[[Record], bool]
Comparable = float | str


class SearchError(ValueError):
    """A request HubSpot refuses with 400 VALIDATION_ERROR."""


@dataclass
class SearchRequest:
    groups: list[list[Predicate]]
    sort: tuple[str, bool] | None  # (property, descending)
    words: list[str]  # the text query, lower-cased
    properties: list[str] | None
    limit: int
    after: int
    key: str  # identifies the matching set (for caching), whatever the page


def parse(body: dict[str, Any], otype: ObjectType, table: Table, data: PortalData,
          cap: int) -> SearchRequest:
    limit = _integer(body.get("limit"), DEFAULT_LIMIT, "limit")
    if limit > MAX_LIMIT or limit < 0:
        raise SearchError(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")
    after = _integer(body.get("after"), 0, "after")
    if after < 0:
        raise SearchError(f"after must not be negative, got {after}")
    if after >= cap or after + limit > cap:
        raise SearchError(f"The search API returns at most {cap} results: after ({after}) plus "
                          f"limit ({limit}) goes beyond the {cap}th result. Narrow the query "
                          "(e.g. filter on hs_object_id greater than the last id seen).")
    groups_in = body.get("filterGroups") or []
    if not isinstance(groups_in, list):
        raise SearchError("filterGroups must be a list")
    if len(groups_in) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups ({len(groups_in)}); the maximum is "
                          f"{MAX_GROUPS}")
    groups: list[list[Predicate]] = []
    total = 0
    for group in groups_in:
        filters = (group or {}).get("filters") or [] if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchError("each filter group needs a list of filters")
        if len(filters) > MAX_GROUP_FILTERS:
            raise SearchError(f"Too many filters in a filter group ({len(filters)}); the "
                              f"maximum is {MAX_GROUP_FILTERS}")
        total += len(filters)
        groups.append([_predicate(f, otype, table, data) for f in filters])
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters ({total}); the maximum is {MAX_FILTERS} across "
                          "all filter groups")
    query = body.get("query") or ""
    if not isinstance(query, str):
        raise SearchError("query must be a string")
    if len(query) > MAX_QUERY:
        raise SearchError(f"query is longer than {MAX_QUERY} characters")
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, list):
        raise SearchError("properties must be a list of property names")
    key = json.dumps([groups_in, body.get("sorts"), query], sort_keys=True, default=str)
    return SearchRequest(groups, _sort(body.get("sorts")), query.lower().split(),
                         [str(p) for p in properties] if properties else None,
                         limit, after, key)


def matching_ids(request: SearchRequest, table: Table, visible_until: int | None) -> list[int]:
    """Ids of every live record that matches, in the requested order (ties by id)."""
    otype = table.otype
    found: list[Record] = []
    for record in table.records.values():
        if record.archived:
            continue
        if visible_until is not None and record.updated > visible_until:
            continue  # not indexed yet
        if request.groups and not any(all(p(record) for p in group)
                                      for group in request.groups):
            continue
        if request.words and not _matches_query(record, otype, request.words):
            continue
        found.append(record)
    found.sort(key=lambda r: r.id)
    if request.sort is None:
        return [r.id for r in found]
    prop, descending = request.sort
    value = _normalizer(prop, otype, table)
    keyed = [(value(r), r) for r in found]
    present = [(k, r) for k, r in keyed if k is not None]
    missing = [r for k, r in keyed if k is None]
    # Python's sort is stable, so equal values stay in id order either way.
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [r.id for _, r in present] + [r.id for r in missing]


# -- parsing helpers ---------------------------------------------------------------------------

def _integer(value: object, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError:
        raise SearchError(f"{name} must be an integer, got {value!r}") from None


def _sort(sorts: object) -> tuple[str, bool] | None:
    if not sorts:
        return None
    if not isinstance(sorts, list):
        raise SearchError("sorts must be a list")
    if len(sorts) > 1:
        raise SearchError("Only one sort is supported per search")
    sort = sorts[0]
    if isinstance(sort, str):  # the SDK's models type sorts as strings: "-createdate"
        return (sort.lstrip("-"), sort.startswith("-"))
    if not isinstance(sort, dict) or not sort.get("propertyName"):
        raise SearchError("a sort needs a propertyName")
    direction = str(sort.get("direction") or "ASCENDING").upper()
    if direction not in ("ASCENDING", "DESCENDING"):
        raise SearchError(f"sort direction must be ASCENDING or DESCENDING, not {direction}")
    return (str(sort["propertyName"]), direction == "DESCENDING")


def _raw_getter(prop: str, otype: ObjectType) -> Callable[[Record], Value | None]:
    if prop == OBJECT_ID:
        return lambda r: r.id
    if prop == CREATEDATE:
        return lambda r: r.created
    if prop == otype.modified:
        return lambda r: r.updated
    return lambda r: r.props.get(prop)


def _kind(prop: str, otype: ObjectType) -> Kind:
    # Properties set through the admin API that the schema lacks are plain strings.
    return otype.kind(prop) or Kind.STRING


def _convert(kind: Kind, value: object) -> Comparable | None:
    """A value (record's or filter's) in the form it compares in; None when absent/unusable."""
    if value is None or value == "":
        return None
    if kind is Kind.NUMBER:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    if kind in (Kind.DATETIME, Kind.DATE):
        ms = parse_time(value)
        return float(ms) if ms is not None else None
    return str(value).lower()


def _normalizer(prop: str, otype: ObjectType, table: Table) -> Callable[[Record],
                                                                        Comparable | None]:
    raw, kind = _raw_getter(prop, otype), _kind(prop, otype)
    if kind is Kind.DATETIME and prop in (CREATEDATE, otype.modified):
        return lambda r: float(raw(r))  # type: ignore[arg-type]
    return lambda r: _convert(kind, raw(r))


def _filter_value(kind: Kind, value: object, operator: str) -> Comparable:
    converted = _convert(kind, value)
    if converted is None:
        raise SearchError(f"{operator} needs a valid value for this property, got {value!r}")
    return converted


def _tokens(text: str) -> set[str]:
    return {t for t in _TOKEN_SPLIT.split(text) if t}


def _predicate(spec: object, otype: ObjectType, table: Table, data: PortalData) -> Predicate:
    if not isinstance(spec, dict):
        raise SearchError("a filter must be an object")
    prop = str(spec.get("propertyName") or "")
    operator = str(spec.get("operator") or "EQ").upper()
    if not prop:
        raise SearchError("a filter needs a propertyName")
    if operator not in OPERATORS:
        raise SearchError(f"Unknown filter operator {operator}; use one of "
                          f"{', '.join(sorted(OPERATORS))}")
    if prop.startswith("associations."):
        return _association_predicate(prop, operator, spec, otype, data)
    kind = _kind(prop, otype)
    value = _normalizer(prop, otype, table)
    if operator == "HAS_PROPERTY":
        return lambda r: value(r) is not None
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: value(r) is None
    if operator in ("IN", "NOT_IN"):
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"{operator} needs a non-empty list of values")
        wanted = {_filter_value(kind, v, operator) for v in values}
        if operator == "IN":
            return lambda r: value(r) in wanted
        return lambda r: value(r) not in wanted
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(spec.get("value") or "").lower()
        if not pattern:
            raise SearchError(f"{operator} needs a value")
        raw = _raw_getter(prop, otype)

        def contains(record: Record) -> bool:
            text = raw(record)
            if text is None or text == "":
                return False
            whole = str(text).lower()
            if "*" in pattern:
                return fnmatch.fnmatchcase(whole, pattern) or any(
                    fnmatch.fnmatchcase(t, pattern) for t in _tokens(whole))
            return pattern == whole or pattern in _tokens(whole)

        if operator == "CONTAINS_TOKEN":
            return contains
        return lambda r: not contains(r)
    target = _filter_value(kind, spec.get("value"), operator)
    if operator == "EQ":
        return lambda r: value(r) == target
    if operator == "NEQ":
        return lambda r: value(r) != target
    if operator == "BETWEEN":
        high = _filter_value(kind, spec.get("highValue"), operator)
        return lambda r: _between(value(r), target, high)
    compare = _COMPARE[operator]
    return lambda r: _ordered(value(r), target, compare)


def _between(actual: Comparable | None, low: Comparable, high: Comparable) -> bool:
    if actual is None or type(actual) is not type(low):
        return False
    return low <= actual <= high  # type: ignore[operator]


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "LT": lambda a, b: a < b, "LTE": lambda a, b: a <= b,
    "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b,
}


def _ordered(actual: Comparable | None, target: Comparable,
             compare: Callable[[Any, Any], bool]) -> bool:
    if actual is None or type(actual) is not type(target):
        return False
    return compare(actual, target)


def _association_predicate(prop: str, operator: str, spec: dict[str, Any], otype: ObjectType,
                           data: PortalData) -> Predicate:
    """`associations.company EQ 123`: records associated with that record."""
    target_type = resolve(prop.split(".", 1)[1])
    if target_type is None:
        raise SearchError(f"Unknown association type in {prop}")
    pair = (otype.name, target_type.name)

    def ids(record: Record) -> Iterable[int]:
        return data.links.get(pair, {}).get(record.id, {}).keys()

    if operator == "HAS_PROPERTY":
        return lambda r: bool(ids(r))
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: not ids(r)
    raw = spec.get("values") if operator in ("IN", "NOT_IN") else [spec.get("value")]
    try:
        wanted = {int(str(v)) for v in raw or []}
    except ValueError:
        raise SearchError(f"{prop} takes record ids") from None
    if operator in ("EQ", "IN"):
        return lambda r: not wanted.isdisjoint(ids(r))
    if operator in ("NEQ", "NOT_IN"):
        return lambda r: wanted.isdisjoint(ids(r))
    raise SearchError(f"{operator} is not supported on {prop}")


def _matches_query(record: Record, otype: ObjectType, words: list[str]) -> bool:
    tokens: set[str] = set()
    for prop in otype.searchable:
        text = record.get(prop, otype)
        if text is not None:
            lowered = str(text).lower()
            tokens.add(lowered)
            tokens.update(_tokens(lowered))
    return all(any(t.startswith(w) for t in tokens) for w in words)
