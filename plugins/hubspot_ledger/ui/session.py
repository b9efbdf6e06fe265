"""Who is looking at the operator page, and whether a form post really comes from it.

**Login.** The page is Airflow's: Airflow's UI keeps the user's JWT in the `_token` cookie
(httponly), and the browser sends it to the page (same origin, inside the UI's iframe). The
token is validated by the auth manager exactly as api/auth.py validates a Bearer token
(`resolve_user_from_token`); no cookie, or an expired or invalid one, is an anonymous visitor,
sent to Airflow's login page. Which integrations the user sees, and what they may do on each, is
api/auth.py's `authorize` (membership + the auth manager's DAG permission), nothing else.

**Forms (cross-site request forgery).** The JSON API refuses cookie-only requests that change
something, because a browser attaches the cookie to a request another site makes it send. The
page's forms have only the cookie, so every form carries a token bound to the session: an
HMAC of the user's JWT under the deployment's signing key (the key that signs OAuth states,
`crypto.SigningKey`; any currently accepted key verifies, so a key rotation does not break an
open page). Another site can neither read the page nor compute the token. A post whose
`Origin` header names another host (or is opaque, `null`) is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import resolve_user_from_token
from fastapi import HTTPException, Request, status

from hubspot_ledger.crypto import get_cipher

_PURPOSE = b"hubspot-ledger operator page form:"
FORM_REFUSED = ("This form is out of date or did not come from the operator page; reload the "
                "page and try again")


async def page_user(request: Request) -> BaseUser | None:
    """The user of the page's session cookie; None when there is no valid session."""
    token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:
        return None
    try:
        return await resolve_user_from_token(token)
    except HTTPException:  # expired (401) or invalid (403): log in again
        return None


def _mac(key: bytes, session_token: str) -> str:
    return hmac.new(key, _PURPOSE + session_token.encode(), hashlib.sha256).hexdigest()


def form_token(request: Request) -> str:
    """The token the page's forms carry, bound to this session's JWT."""
    return _mac(get_cipher().signing_key, request.cookies.get(COOKIE_NAME_JWT_TOKEN, ""))


def check_form(request: Request, submitted: str) -> None:
    """Refuse (403) a form post that is not the page's own (module docstring)."""
    origin = request.headers.get("origin")
    if origin and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORM_REFUSED)
    session_token = request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")
    keys = get_cipher().signing_key.accepted
    if not session_token or not submitted or not any(
            hmac.compare_digest(_mac(key, session_token), submitted) for key in keys):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORM_REFUSED)
