"""The sandbox's whole mutable state: config, portals and their data, OAuth, faults, the log."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hubspot_ledger_tools.sandbox.config import PortalSettings, SandboxConfig, parse_scale
from hubspot_ledger_tools.sandbox.faults import FaultRule, parse_rule
from hubspot_ledger_tools.sandbox.generator import generate
from hubspot_ledger_tools.sandbox.latency import LatencyModel
from hubspot_ledger_tools.sandbox.oauth import OAuthState
from hubspot_ledger_tools.sandbox.ratelimit import PortalLimits
from hubspot_ledger_tools.sandbox.records import PortalData, Table
from hubspot_ledger_tools.sandbox.requestlog import RequestLog
from hubspot_ledger_tools.sandbox.search import SearchRequest, matching_ids
from hubspot_ledger_tools.sandbox.timefmt import now_ms
from hubspot_ledger_tools.sandbox.webhooks import WebhookSender

SEARCH_CACHE_SIZE = 64


@dataclass
class Portal:
    settings: PortalSettings
    data: PortalData
    limits: PortalLimits = field(default_factory=PortalLimits)

    @property
    def id(self) -> int:
        return self.settings.portal_id

    def describe(self) -> dict[str, Any]:
        return {**self.settings.to_dict(), "counts": self.data.counts()}


def build_portal(settings: PortalSettings) -> Portal:
    scale = parse_scale(settings.scale)
    return Portal(settings, generate(settings.seed, scale, settings.currency,
                                     [c for c in settings.additional_currencies
                                      if c != settings.currency], beyond=settings.beyond))


class Sandbox:
    """Guarded by `lock`: handlers run on one event loop, but tests and the CLI may touch the
    state from other threads (and a handler must see a consistent portal while it pages).
    Nothing slow happens under the lock: portals are generated before they are swapped in."""

    def __init__(self, config: SandboxConfig) -> None:
        self.startup = config  # what every reset returns to
        self.lock = threading.RLock()
        self.config = config
        self.portals: dict[int, Portal] = {}
        self.oauth = OAuthState()
        self.faults: list[FaultRule] = []
        self.fault_seq = 0
        self.log = RequestLog(config.request_log_size)
        self.latency = LatencyModel(config.effective_latency_seed())
        self._search_cache: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self.webhooks = WebhookSender(self._webhook_settings)
        self.reset()

    def _webhook_settings(self) -> tuple[str, str, int, list[str], int, float, int]:
        c = self.config
        return (c.webhook_url, c.client_secret, c.app_id, list(c.webhook_subscriptions),
                c.webhook_batch_size, c.webhook_batch_delay, c.webhook_retries)

    def reset(self, seed: int | None = None, scale: str | int | None = None) -> None:
        """Back to the startup config with one regenerated portal (this time with another
        seed or scale, if given), and no tokens, faults or log."""
        changes: dict[str, Any] = {}
        if seed is not None:
            changes["seed"] = int(seed)
        if scale is not None:
            parse_scale(scale)  # refuse a bad scale before dropping anything
            changes["scale"] = str(scale)
        config = dataclasses.replace(self.startup, **changes)
        portal = build_portal(config.portal_settings())
        with self.lock:
            self.config = config
            self.portals = {portal.id: portal}
            self.oauth = OAuthState()
            self.faults = []
            self.fault_seq = 0
            self.log = RequestLog(config.request_log_size)
            self.latency = LatencyModel(config.effective_latency_seed())
            self._search_cache.clear()
            self.webhooks.clear()

    @property
    def default_portal_id(self) -> int:
        return self.config.portal_id

    def add_portal(self, settings: PortalSettings) -> Portal:
        portal = build_portal(settings)
        with self.lock:
            if settings.portal_id in self.portals:
                raise ValueError(f"portal {settings.portal_id} already exists")
            self.portals[settings.portal_id] = portal
        return portal

    def portal(self, portal_id: int | None) -> Portal | None:
        return self.portals.get(self.default_portal_id if portal_id is None else portal_id)

    def update_config(self, changes: dict[str, Any]) -> SandboxConfig:
        with self.lock:
            before = self.config
            self.config = self.config.updated(changes)
            self.log.resize(self.config.request_log_size)
            if (before.latency, before.effective_latency_seed()) != (
                    self.config.latency, self.config.effective_latency_seed()):
                # Switched or reseeded: the delays start again from the first of the seed.
                self.latency = LatencyModel(self.config.effective_latency_seed())
            return self.config

    # -- faults ---------------------------------------------------------------------------------

    def add_faults(self, rules: list[dict[str, Any]]) -> list[FaultRule]:
        with self.lock:
            parsed = []
            seq = self.fault_seq
            for data in rules:
                seq += 1
                parsed.append(parse_rule(data, f"fault-{seq}"))
            self.fault_seq = seq
            self.faults.extend(parsed)
            return parsed

    # -- search -----------------------------------------------------------------------------------

    def search_ids(self, portal: Portal, table: Table, request: SearchRequest) -> list[int]:
        lag = self.config.search_lag
        if lag > 0:  # visibility changes with the clock: nothing to cache
            return matching_ids(request, table, now_ms() - int(lag * 1000))
        key = (portal.id, id(portal.data), table.otype.name, request.key, table.version,
               portal.data.links_version)
        found = self._search_cache.get(key)
        if found is None:
            found = matching_ids(request, table, None)
            self._search_cache[key] = found
            while len(self._search_cache) > SEARCH_CACHE_SIZE:
                self._search_cache.popitem(last=False)
        else:
            self._search_cache.move_to_end(key)
        return found
