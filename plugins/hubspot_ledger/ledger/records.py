"""Typed records of the ledger and its vocabularies (DESIGN.md, "Ledger data contract").

The enumerations mirror the check constraints of `include/migrations/`; a test holds the two
together. No I/O and no Airflow imports: the map layer and the DAG factory import this freely.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class IntegrationStatus(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    ERROR = "error"


class Provider(StrEnum):
    HUBSPOT = "hubspot"


class CustomerType(StrEnum):
    COMPANY = "company"
    INDIVIDUAL = "individual"


class ItemType(StrEnum):
    SERVICE = "service"
    GOODS = "goods"


class ContractStatus(StrEnum):
    """The sync writes only DRAFT; a contract accountants moved on is never overwritten."""

    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class RecognitionStrategy(StrEnum):
    IMMEDIATE = "immediate"
    RATABLE = "ratable"


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


class SyncRunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class RemoteType(StrEnum):
    """HubSpot object types, as written to integration_records and integration_errors."""

    PRODUCT = "product"
    COMPANY = "company"
    DEAL = "deal"
    LINE_ITEM = "line_item"
    INVOICE = "invoice"


@dataclass(frozen=True, slots=True)
class IntegrationSummary:
    """What the DAG factory needs to know about one integration to build its DAG.

    JSON round-trips through `to_dict`/`from_dict`, because the factory caches the last list it
    read so that a ledger outage never makes the DAGs disappear.
    """

    id: int
    organization_id: int
    organization_name: str
    status: IntegrationStatus
    schedule: str
    cutoff_date: dt.date

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["cutoff_date"] = self.cutoff_date.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntegrationSummary:
        return cls(
            id=int(data["id"]),
            organization_id=int(data["organization_id"]),
            organization_name=str(data["organization_name"]),
            status=IntegrationStatus(data["status"]),
            schedule=str(data["schedule"]),
            cutoff_date=dt.date.fromisoformat(str(data["cutoff_date"])),
        )
