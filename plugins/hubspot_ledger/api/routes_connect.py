"""Connecting a portal: the consent URL (an Airflow user asks) and the OAuth callback (HubSpot's
redirect comes back; no Airflow user, the signed, expiring, single-use state vouches for it).

A browser following HubSpot's redirect ends on an HTML page saying what happened (with a link
back to the operator page, `hubspot_ledger.ui`); any other caller gets JSON as before.

The consent URL is for members of the integration's organization who may change it (editor or
operator) and Airflow admins (api/auth.py). The callback takes at most 64 KiB (guard.py) and
checks the shape of `code` before spending anything on it; its `code` and `state` never reach
a log line (guard.py redacts them from the access log; nothing here logs them).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

from airflow.sdk.exceptions import AirflowNotFoundException
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hubspot_ledger.api.auth import Access, can_connect
from hubspot_ledger.api.schemas import Connected, ConsentUrl
from hubspot_ledger.connect import auth_url, complete_connection
from hubspot_ledger.display import fit
from hubspot_ledger.errors import InvalidInput, UserFacingError
from hubspot_ledger.hooks.hubspot import HubSpotError
from hubspot_ledger.load.errors import LedgerSchemaError, LedgerUnavailableError, first_line

log = logging.getLogger(__name__)

router = APIRouter(tags=["connect"])

# Failures the app's handlers already answer with their JSON status and message (app.py).
_ANSWERED = (UserFacingError, HubSpotError, LedgerUnavailableError, LedgerSchemaError,
             AirflowNotFoundException)


# HubSpot's codes are short printable ASCII (e.g. "na1-6b7f-…"); a state is base64url with a dot.
_CODE_SHAPE = re.compile(r"[\x21-\x7e]{1,512}")


@router.get("/auth/", summary="HubSpot consent URL of an integration (?integration_id=N)")
def consent_url(access: Annotated[Access, Depends(can_connect)]) -> ConsentUrl:
    return ConsentUrl(url=auth_url(access.integration_id))


def _shown(text: str) -> str:
    """A value HubSpot (or whoever calls the callback) sent, as a message may quote it: valid
    Unicode, one line, no controls, at most 200 characters."""
    return fit(text.encode("utf-8", "replace").decode("utf-8"), 200)


async def _callback_params(request: Request) -> dict[str, str]:
    """`code` and `state` from the query string (HubSpot's redirect is a GET), a JSON object or
    a form (a front end forwarding them)."""
    params = dict(request.query_params)
    if request.method == "POST":
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                    "The body must be a JSON object with code and state")
        else:
            body = await request.form()
        params.update({k: v for k, v in body.items() if isinstance(v, str)})
    return params


def wants_html(request: Request) -> bool:
    """A browser following HubSpot's redirect (a GET that accepts HTML) gets a page; a front
    end or script (POST, JSON, `*/*`) keeps the JSON answer."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


@router.api_route("/oauth-callback/", methods=["GET", "POST"], summary="OAuth callback",
                  response_model=Connected)
async def oauth_callback(request: Request) -> Response:
    if not wants_html(request):
        return JSONResponse((await _connect(request)).model_dump())
    # The customer's browser ends on a page saying what happened, not on raw JSON (issue 15).
    from hubspot_ledger.ui.pages import problem_of, render

    try:
        connected = await _connect(request)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the page's message
        code, message = problem_of(exc)
        return render("connect_result.html", code, ok=False, message=message)
    return render("connect_result.html", ok=True, **connected.model_dump())


async def _connect(request: Request) -> Connected:
    params = await _callback_params(request)
    if "error" in params:  # the customer declined, or HubSpot refused the request
        reason = _shown(params.get("error_description") or params["error"])
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"HubSpot did not grant access ({reason}); start the connection "
                            "again")
    code = params.get("code", "")
    if code and not _CODE_SHAPE.fullmatch(code):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            "The OAuth callback's code is malformed (HubSpot's codes are short "
                            "printable ASCII); start the connection again")
    try:
        integration = await run_in_threadpool(complete_connection, code,
                                              params.get("state", ""))
    except InvalidInput as exc:
        # An OAuth callback's bad request (no code; a tampered, expired or used state) is
        # answered as OAuth answers one: 400. Nothing was changed.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    except _ANSWERED:
        raise
    except Exception as exc:
        # A bug, not a cause we know: still one JSON line for the front end, never a bare 500.
        # Logged by type and first line only: a database error's detail can quote the row,
        # (encrypted) tokens included.
        log.error("The OAuth callback failed unexpectedly: %s: %s", type(exc).__name__,
                  first_line(exc))
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                            f"Connecting HubSpot failed unexpectedly ({type(exc).__name__}); "
                            "the api-server log has the details. Start the connection again; "
                            "if it fails again, an operator must look into it") from None
    return Connected(status=str(integration.status), integration_id=integration.id,
                     portal_id=integration.remote_id, currency=integration.currency)
