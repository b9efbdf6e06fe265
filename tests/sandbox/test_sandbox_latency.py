"""The latency model (issue 12): HubSpot-like response times, seeded, off unless switched on."""

from __future__ import annotations

import math
import statistics

import pytest

from hubspot_ledger_tools.sandbox.latency import MEDIANS_MS, LatencyModel, endpoint_class
from hubspot_ledger_tools.sandbox.testing import SandboxServer

from .helpers import Api

DEALS = "/crm/v3/objects/deals"


@pytest.mark.unit
def test_endpoint_classes() -> None:
    assert endpoint_class("POST /oauth/v3/token") == "token"
    assert endpoint_class("POST /oauth/v3/token/introspect") == "account"
    assert endpoint_class("GET /account-info/v3/details") == "account"
    assert endpoint_class("GET /crm/v3/objects/deals") == "list"
    assert endpoint_class("POST /crm/v3/objects/deals/batch/read") == "batch"
    assert endpoint_class("POST /crm/v3/objects/deals/search") == "search"
    assert endpoint_class("POST /crm/v4/associations/deals/companies/batch/read") \
        == "associations"


@pytest.mark.unit
def test_same_seed_same_sequence_same_delays() -> None:
    sequence = ["POST /crm/v3/objects/deals/search", "GET /crm/v3/objects/products",
                "POST /crm/v3/objects/deals/search", "POST /oauth/v3/token"] * 20
    a, b, other = LatencyModel(7), LatencyModel(7), LatencyModel(8)
    first = [a.next_delay(e) for e in sequence]
    assert first == [b.next_delay(e) for e in sequence]
    assert first != [other.next_delay(e) for e in sequence]


@pytest.mark.unit
def test_medians_and_tail_are_hubspot_like() -> None:
    model = LatencyModel(1)
    for cls, median_ms in MEDIANS_MS.items():
        draws = sorted(model.delay(cls, n) * 1000 for n in range(4000))
        assert statistics.median(draws) == pytest.approx(median_ms, rel=0.06)
        p99 = draws[int(len(draws) * 0.99)]
        assert p99 / median_ms == pytest.approx(4.0, rel=0.2)
        assert all(math.isfinite(d) and d > 0 for d in draws)


@pytest.mark.integration
def test_off_by_default(sb: SandboxServer, api: Api) -> None:
    assert sb.config()["latency"] is False
    api.get(DEALS)
    assert "latency_ms" not in sb.requests()[-1]


@pytest.mark.integration
def test_sandbox_delays_are_deterministic_per_seed(sb: SandboxServer, api: Api) -> None:
    def run(seed: int) -> list[float]:
        sb.update_config(latency=True, latency_seed=seed)
        sb.clear_requests()
        for _ in range(3):
            api.get(DEALS, params={"limit": 1})
            api.search("deals")
        delays = [e["latency_ms"] for e in sb.requests()]
        sb.update_config(latency=False)
        return delays

    first = run(11)
    assert len(first) == 6 and all(d > 0 for d in first)
    assert run(11) == first
    assert run(12) != first
    model = LatencyModel(11)
    assert first[:2] == [round(model.delay("list", 0) * 1000, 3),
                         round(model.delay("search", 0) * 1000, 3)]
