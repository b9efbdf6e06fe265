"""`POST /webhooks/`: the target URL of the deployment's HubSpot app, where HubSpot posts its
webhook events (issue 14, "webhook-driven syncs"; README, "Webhooks").

HubSpot carries no Airflow user, so no Airflow token is asked for: HubSpot's v3 signature (the
app's client secret, `hubspot_default`'s password) is the only guard, checked before anything
else is read or changed. A call without it, with a changed body, signed with another secret or
more than five minutes ago gets 401 and changes nothing. A signed call is answered at once
(HubSpot retries an answer slower than 5 s): its events are recorded in the ledger and, for
each integration connected to a portal they name, Airflow is asked for one run through the
integration's asset (`webhooks.signals`); the scheduler does the rest.

The URI HubSpot signs is the one it called. Behind a proxy that changes the scheme or host, set
`hubspot_default`'s extra `webhook_url` to the target URL configured in the HubSpot app; the
URL as received is always tried too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hubspot_ledger.config import HUBSPOT_CONN_ID
from hubspot_ledger.errors import UserFacingError
from hubspot_ledger.webhooks.events import NotEvents, read_batch
from hubspot_ledger.webhooks.signature import SignatureRefused, fresh_headers, verify_v3

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])
WEBHOOK_PATH = "/webhooks/"


class NoClientSecret(UserFacingError):
    http_status = status.HTTP_503_SERVICE_UNAVAILABLE


def deployment_app() -> tuple[str, list[str]]:
    """The HubSpot app's client secret and its configured target URL(s), from
    `hubspot_default` (password; extra `webhook_url`, a URL or a list)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(HUBSPOT_CONN_ID)
    if not conn.password:
        raise NoClientSecret(f"The {HUBSPOT_CONN_ID} connection has no client secret "
                             "(password), so HubSpot's webhook signatures cannot be checked: "
                             "set it to the HubSpot app's client secret")
    configured: Any = conn.extra_dejson.get("webhook_url") or []
    urls = [configured] if isinstance(configured, str) else list(configured)
    return conn.password, [str(u) for u in urls if u]


def _refused(request: Request, reason: str) -> JSONResponse:
    log.warning("HubSpot webhook refused (%s %s): %s", request.method, request.url.path, reason)
    return JSONResponse({"detail": f"Not a signed HubSpot webhook call: {reason}; nothing "
                                   "was changed"}, status_code=status.HTTP_401_UNAUTHORIZED)


@router.post(WEBHOOK_PATH, summary="HubSpot's webhook calls (v3-signed with the app's secret)")
@router.post(WEBHOOK_PATH.rstrip("/"), include_in_schema=False)
async def hubspot_webhooks(request: Request) -> JSONResponse:
    headers = dict(request.headers)
    try:
        fresh_headers(headers)  # before any work: an unsigned or stale call costs nothing
    except SignatureRefused as exc:
        return _refused(request, str(exc))
    body = await request.body()  # the guard has read it already (bounded); the exact bytes
    secret, urls = await run_in_threadpool(deployment_app)
    try:
        verify_v3(secret, request.method, [*urls, str(request.url)], body, headers)
    except SignatureRefused as exc:
        return _refused(request, str(exc))
    try:
        batch = read_batch(body)
    except NotEvents as exc:
        return JSONResponse({"detail": f"A signed call, but {exc}: nothing was changed"},
                            status_code=status.HTTP_400_BAD_REQUEST)
    from hubspot_ledger.api.asset_events import ask_for_run
    from hubspot_ledger.webhooks.signals import deliver

    outcome = await run_in_threadpool(deliver, batch, ask_for_run)
    return JSONResponse({"received": batch.events, "skipped": batch.skipped,
                         "runs_asked": len(outcome.asked)})
