"""Rolling-window request budgets, one per portal and kind (general API calls, search)."""

from __future__ import annotations

import time
from collections import deque


class RollingWindow:
    """At most `limit` calls in any `window` seconds; refused calls do not use the budget."""

    def __init__(self) -> None:
        self.calls: deque[float] = deque()

    def take(self, limit: int, window: float, now: float | None = None) -> tuple[bool, int]:
        """(allowed, remaining after this call)."""
        now = time.monotonic() if now is None else now
        while self.calls and self.calls[0] <= now - window:
            self.calls.popleft()
        if len(self.calls) >= limit:
            return False, 0
        self.calls.append(now)
        return True, limit - len(self.calls)


class PortalLimits:
    def __init__(self) -> None:
        self.general = RollingWindow()
        self.search = RollingWindow()
