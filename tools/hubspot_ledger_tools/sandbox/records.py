"""One portal's CRM data in memory: records per object type and the associations between them."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from hubspot_ledger_tools.sandbox.schema import CREATEDATE, OBJECT_ID, OBJECT_TYPES, ObjectType

Value = str | int  # datetimes are epoch ms (int); everything else is HubSpot's string


class Record:
    """A CRM record. createdate, the last-modified date and hs_object_id live in the fields."""

    __slots__ = ("id", "props", "created", "updated", "archived", "archived_at")

    def __init__(self, id: int, props: dict[str, Value], created: int, updated: int) -> None:
        self.id = id
        self.props = props
        self.created = created
        self.updated = updated
        self.archived = False
        self.archived_at: int | None = None

    def get(self, prop: str, otype: ObjectType) -> Value | None:
        if prop == OBJECT_ID:
            return str(self.id)
        if prop == CREATEDATE:
            return self.created
        if prop == otype.modified:
            return self.updated
        return self.props.get(prop)


class Table:
    """The records of one object type, by id and in id order (list paging walks the order)."""

    def __init__(self, otype: ObjectType) -> None:
        self.otype = otype
        self.records: dict[int, Record] = {}
        self.ids: list[int] = []  # ascending
        self.version = 0  # bumped on every change: search results are cached per version
        self.extra_properties: set[str] = set()  # properties set through the admin API

    def add(self, record: Record) -> None:
        if record.id not in self.records:
            if not self.ids or record.id > self.ids[-1]:
                self.ids.append(record.id)
            else:
                bisect.insort(self.ids, record.id)
        self.records[record.id] = record
        self.version += 1

    def remove(self, record_id: int) -> None:
        if self.records.pop(record_id, None) is not None:
            index = bisect.bisect_left(self.ids, record_id)
            del self.ids[index]
            self.version += 1

    def next_id(self) -> int:
        return (self.ids[-1] if self.ids else 1000) + 1

    def knows(self, prop: str) -> bool:
        return prop in self.otype.properties or prop in self.extra_properties

    def page(self, after: int, limit: int, archived: bool) -> tuple[list[Record], int | None]:
        """Up to `limit` records with id ≥ `after`; the cursor of the next page, if any."""
        found: list[Record] = []
        index = bisect.bisect_left(self.ids, after)
        while index < len(self.ids):
            record = self.records[self.ids[index]]
            index += 1
            if record.archived != archived:
                continue
            if len(found) == limit:
                return found, record.id
            found.append(record)
        return found, None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records.values())


# from id → {to id: [association type ids]}, one map per (from type, to type)
Links = dict[int, dict[int, list[int]]]


class PortalData:
    def __init__(self) -> None:
        self.tables: dict[str, Table] = {name: Table(t) for name, t in OBJECT_TYPES.items()}
        self.links: dict[tuple[str, str], Links] = {}
        self.links_version = 0

    def table(self, otype: ObjectType | str) -> Table:
        return self.tables[otype if isinstance(otype, str) else otype.name]

    def linked(self, from_type: str, from_id: int, to_type: str) -> dict[int, list[int]]:
        return self.links.get((from_type, to_type), {}).get(from_id, {})

    def add_link(self, from_type: str, from_id: int, to_type: str, to_id: int,
                 type_ids: list[int]) -> None:
        targets = self.links.setdefault((from_type, to_type), {}).setdefault(from_id, {})
        known = targets.setdefault(to_id, [])
        known.extend(t for t in type_ids if t not in known)
        self.links_version += 1

    def drop_links(self, from_type: str, from_id: int, to_type: str) -> None:
        """Remove every association of one record to one type, in both directions."""
        targets = self.links.get((from_type, to_type), {}).pop(from_id, {})
        back = self.links.get((to_type, from_type), {})
        for to_id in targets:
            reverse = back.get(to_id)
            if reverse is not None:
                reverse.pop(from_id, None)
                if not reverse:
                    del back[to_id]
        self.links_version += 1

    def drop_all_links(self, from_type: str, from_id: int) -> None:
        for (source, target) in list(self.links):
            if source == from_type:
                self.drop_links(source, from_id, target)

    def counts(self) -> dict[str, int]:
        return {name: len(table) for name, table in self.tables.items()}
