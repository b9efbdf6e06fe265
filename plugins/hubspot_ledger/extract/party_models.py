"""An invoice's party as the map layer receives it (issue 14, `--invoice-parties hubspot`);
read by `extract.parties`. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubspot_ledger.extract.models import Company, clean_line


@dataclass(frozen=True, slots=True)
class Contact:
    """A HubSpot contact as an invoice's party: its name and email, as display text."""

    id: str
    name: str | None
    email: str | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Contact:
        props = raw.get("properties") or {}
        first, last = (clean_line(str(props.get(p) or "")) for p in ("firstname", "lastname"))
        name = " ".join(part for part in (first, last) if part) or None
        return cls(id=str(raw.get("id", "")), name=clean_line(name),
                   email=clean_line(str(props.get("email") or "")))


@dataclass(frozen=True, slots=True)
class Party:
    """An invoice's associated company (None: none, or HubSpot sent it unreadable) and, for an
    invoice without one, its associated contact."""

    company: Company | None = None
    contact: Contact | None = None


NO_PARTY = Party()
