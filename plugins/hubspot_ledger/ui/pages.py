"""Rendering the operator page's HTML: Jinja2 templates (package data in `templates/`) with
autoescaping on for every template, so text from HubSpot or the ledger (a deal named
`<script>…`) is shown as text, never run. The pages carry no script at all, and their
Content-Security-Policy forbids scripts and lets only the same origin frame them.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from functools import cache
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException
from fastapi import HTTPException, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from hubspot_ledger.errors import UserFacingError
from hubspot_ledger.hooks.hubspot import HubSpotError
from hubspot_ledger.load.errors import LedgerSchemaError, LedgerUnavailableError, first_line

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src 'self'; form-action 'self' https: http:; "
                               "frame-ancestors 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
DEPLOYMENT_PROBLEMS = (LedgerUnavailableError, LedgerSchemaError, HubSpotError,
                       AirflowNotFoundException)


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _money(value: object) -> str:
    return f"{value:,}" if isinstance(value, Decimal | int) else "—"


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("hubspot_ledger.ui", "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["money"] = _money
    return env


def page_path() -> str:
    """The operator page's overview, as a path on the api-server (below its base URL)."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    from hubspot_ledger.ui import UI_PREFIX

    base = urlsplit(conf.get("api", "base_url", fallback="/") or "/").path.rstrip("/")
    return f"{base}{UI_PREFIX}/"


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(ui_home=page_path(), **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def problem_of(exc: Exception) -> tuple[int, str]:
    """The status and one-line message the JSON API answers for `exc` (api/app.py)."""
    if isinstance(exc, UserFacingError):
        return exc.http_status, str(exc)
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, DEPLOYMENT_PROBLEMS):
        return status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)
    log.error("The operator page failed unexpectedly: %s: %s", type(exc).__name__,
              first_line(exc))
    return (status.HTTP_500_INTERNAL_SERVER_ERROR,
            f"The request failed unexpectedly ({type(exc).__name__}); the api-server log has "
            "the details")


def message_page(exc: Exception, title: str = "Something went wrong") -> HTMLResponse:
    code, message = problem_of(exc)
    return render("message.html", code, title=title, message=message, http_status=code)
