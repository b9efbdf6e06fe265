"""HubSpot-like response times: a seeded lognormal delay per endpoint class.

HubSpot answers CRM reads in roughly 100–300 ms, search and batch reads slower, with a long
tail. Each class below has a median and the same tail (p99 = `TAIL` × median), so the
lognormal's σ is ln(TAIL) / z₀.₉₉. The delay of the n-th request of a class depends only on
(seed, class, n): the same seed and the same request sequence give the same delays, whatever
the wall clock or the other classes do.

The delay is awaited on the event loop (`asyncio.sleep`), after the request was admitted by the
rate limits (HubSpot counts a request when it arrives; latency is the time it takes to answer),
so it never holds up the sandbox's other requests.
"""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from collections.abc import Mapping

# Median milliseconds per endpoint class: HubSpot-like (issue 12). Classes are read from the
# version-neutral endpoint names (routing.py), so a dated call (`/crm/objects/2026-03/…`) has
# its legacy twin's class.
MEDIANS_MS: Mapping[str, float] = {
    "token": 100.0,  # POST /oauth/v3/token (or /oauth/2026-03/token)
    "account": 100.0,  # token introspection, account details, other OAuth metadata
    "list": 120.0,  # GET /crm/v3/objects/{type} (and by id)
    "batch": 120.0,  # POST /crm/v3/objects/{type}/batch/read
    "search": 250.0,  # POST /crm/v3/objects/{type}/search
    "associations": 150.0,  # v4 (or dated) associations
}
TAIL = 4.0  # p99 / median
_Z99 = 2.3263478740408408  # the standard normal's 99th percentile
SIGMA = math.log(TAIL) / _Z99
CAP = 10.0  # no delay beyond 10 × the median: a sandbox stalling for seconds tests nothing


def endpoint_class(endpoint: str) -> str:
    """The latency class of a routed endpoint name ("POST /crm/v3/objects/deals/search")."""
    method, _, path = endpoint.partition(" ")
    if path.startswith("/oauth/") and "/token" in path and not path.endswith(
            ("/introspect", "/revoke")) and "access-tokens" not in path \
            and "refresh-tokens" not in path:
        return "token"
    if path.startswith(("/oauth/", "/account-info/")):
        return "account"
    if "/associations/" in path:
        return "associations"
    if path.endswith("/search"):
        return "search"
    if "/batch/" in path:
        return "batch"
    return "list"


class LatencyModel:
    """`next_delay(endpoint)`: seconds to wait before answering, drawn per class in order."""

    def __init__(self, seed: int, medians_ms: Mapping[str, float] = MEDIANS_MS,
                 tail: float = TAIL) -> None:
        self.seed = seed
        self.medians_ms = dict(medians_ms)
        self.sigma = math.log(tail) / _Z99
        self._drawn: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def delay(self, cls: str, n: int) -> float:
        """The n-th delay (from 0) of class `cls`, in seconds: a pure function of the seed."""
        median = self.medians_ms.get(cls, self.medians_ms["list"]) / 1000
        rng = random.Random(f"{self.seed}:{cls}:{n}")  # str seeds hash stably (SHA-512)
        return min(median * math.exp(self.sigma * rng.gauss(0.0, 1.0)), CAP * median)

    def next_delay(self, endpoint: str) -> float:
        cls = endpoint_class(endpoint)
        with self._lock:
            n = self._drawn[cls]
            self._drawn[cls] = n + 1
        return self.delay(cls, n)

    def describe(self) -> dict[str, object]:
        return {"seed": self.seed, "medians_ms": self.medians_ms,
                "p99_over_median": round(math.exp(self.sigma * _Z99), 3),
                "distribution": "lognormal"}
