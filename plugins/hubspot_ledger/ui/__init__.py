"""The operator page in Airflow's UI (issue 15 item 3): server-rendered HTML served by a FastAPI
app that the plugin mounts at `/hubspot-ledger`, reached from Airflow's navigation (an external
view that opens it in its own tab). See `hubspot_ledger.ui.app`.

Importing this package is cheap, as `hubspot_ledger.api`'s is: the app is built on its first
request, in the api-server only.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

UI_PREFIX = "/hubspot-ledger"


class LazyPage:
    """An ASGI app that builds the operator page's app (behind `api.guard.RequestGuard`: the
    same body limit and last-resort answer as the integration endpoints) on its first call."""

    @cached_property
    def app(self) -> ASGIApp:
        from hubspot_ledger.api.guard import RequestGuard
        from hubspot_ledger.ui.app import create_app

        return RequestGuard(create_app())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:  # shown by `airflow plugins`
        return "<hubspot_ledger.ui.LazyPage: RequestGuard(hubspot_ledger.ui.app.create_app())>"
