"""Mapping data (`data/mappings/*.yaml`, package data; `include/mappings` in a checkout), read
once per process and checked on load: which HubSpot properties the extract requests and how the
map layer maps them. Data both sides use, so neither imports the other."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from hubspot_ledger import config
from hubspot_ledger.extract import models
from hubspot_ledger.load.records import ItemType, RemoteType

CUSTOMER_FIELDS = ("name", "email", "phone", "website", "address_line1", "address_line2",
                   "city", "state", "postal_code", "country")


class MappingDataError(RuntimeError):
    """A file of include/mappings is missing or malformed: a deployment fault, not a record's."""


def _load(name: str) -> dict[str, Any]:
    path = Path(config.MAPPINGS_DIR) / name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingDataError(f"cannot read mapping file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise MappingDataError(f"mapping file {path} is not a YAML mapping")
    return data


def _section(name: str, key: str) -> dict[str, Any]:
    section = _load(name).get(key)
    if not isinstance(section, dict) or not section:
        raise MappingDataError(f"mapping file {name} has no '{key}' section")
    return section


def _item_type(name: str, value: Any) -> ItemType:
    try:
        return ItemType(value)
    except ValueError:
        raise MappingDataError(f"{name}: {value!r} is not an item type") from None


@cache
def product_types() -> tuple[MappingProxyType[str, ItemType], ItemType]:
    """(HubSpot product type in lower case → item type, the type of missing/unknown ones)."""
    name = "product_types.yaml"
    types = {str(k).strip().lower(): _item_type(name, v)
             for k, v in _section(name, "types").items()}
    return MappingProxyType(types), _item_type(name, _load(name).get("default"))


@cache
def customer_fields() -> MappingProxyType[str, str]:
    """Customer field → HubSpot company property (R-COMP-2)."""
    name = "company_to_customer.yaml"
    fields = {str(k): str(v) for k, v in _section(name, "fields").items()}
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown or "name" not in fields:
        raise MappingDataError(f"{name}: fields must include 'name' and be among "
                               f"{', '.join(CUSTOMER_FIELDS)} (unknown: {sorted(unknown)})")
    return MappingProxyType(fields)


@cache
def currency_minor_units() -> MappingProxyType[str, int]:
    """ISO 4217 code → decimal places of its minor unit."""
    name = "currencies.yaml"
    units = _section(name, "minor_units")
    bad = [c for c, u in units.items()
           if not re.fullmatch(r"[A-Z]{3}", str(c)) or not isinstance(u, int) or not 0 <= u <= 4]
    if bad:
        # 4 places is the most numeric(20,4) money columns hold.
        raise MappingDataError(f"{name}: bad entries {bad[:5]}")
    return MappingProxyType({str(c): int(u) for c, u in units.items()})


_RECORD_TYPES: dict[RemoteType, type[models.HubSpotRecord]] = {
    RemoteType.PRODUCT: models.Product,
    RemoteType.COMPANY: models.Company,
    RemoteType.DEAL: models.Deal,
    RemoteType.LINE_ITEM: models.LineItem,
    RemoteType.INVOICE: models.Invoice,
}


def hubspot_properties(remote_type: RemoteType | str) -> tuple[str, ...]:
    """The properties the map layer reads for a type: what the extract should request."""
    remote_type = RemoteType(remote_type)
    names = list(_RECORD_TYPES[remote_type].PROPERTIES)
    if remote_type is RemoteType.COMPANY:
        names += customer_fields().values()
    return tuple(dict.fromkeys(names))
