"""The integration endpoints: a FastAPI app that the Airflow plugin mounts on the api-server at
`/api/integrations/hubspot` (see `plugins/hubspot_ledger_plugin.py`).

Importing this package is cheap on purpose. Airflow imports every plugin module in every process
that loads plugins (scheduler, DAG processor, each task's runner), yet only the api-server serves
HTTP; so the app, FastAPI and Airflow's api-server security module are imported on the first
request, not when the plugin is loaded.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

URL_PREFIX = "/api/integrations/hubspot"


class LazyApp:
    """An ASGI app that builds the real one (the `create_app` of module `factory`, behind
    `hubspot_ledger.api.guard.RequestGuard`: one body limit and last-resort answer for every
    app of the plugin) when first called. One event loop calls it, and building is
    synchronous, so it is built once. Airflow imports the plugin at start-up; building the
    apps then would import FastAPI routes, the hooks and the ledger layer for nothing."""

    def __init__(self, factory: str = "hubspot_ledger.api.app") -> None:
        self.factory = factory

    @cached_property
    def app(self) -> ASGIApp:
        from importlib import import_module

        from hubspot_ledger.api.guard import RequestGuard

        return RequestGuard(import_module(self.factory).create_app())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:  # shown by `airflow plugins`
        return f"<LazyApp: RequestGuard({self.factory}.create_app())>"
