"""CSRF tokens for every form on the team pages (synchroniser tokens, no JavaScript needed).

A token is an HMAC of what it is bound to: the session for a signed-in member, or, before
sign-in, a random value in a short-lived "pre-session" cookie (so the sign-in form and the
link's button cannot be posted from another site either, which stops "login CSRF": signing
a victim in as the attacker). Nothing is stored; a token from one session is worthless in
another, and all of a session's tokens die with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

FIELD = "csrf_token"  # the hidden form field
PRE_COOKIE = "equip_team_pre"
PRE_LIFETIME = 3600  # seconds: long enough to fetch a link from one's mail


def token(key: bytes, binding: str) -> str:
    digest = hmac.new(key, b"team-csrf|" + binding.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def valid(key: bytes, binding: str | None, given: object) -> bool:
    """Whether ``given`` (the posted field) is the token for ``binding``."""
    if not binding or not isinstance(given, str) or len(given) > 100:
        return False
    return hmac.compare_digest(token(key, binding), given)


def pre_binding(request: Request) -> str | None:
    """The pre-session cookie's value, if the browser sent a plausible one."""
    value = request.cookies.get(PRE_COOKIE)
    return value if value and 20 <= len(value) <= 100 else None


def ensure_pre_binding(request: Request) -> tuple[str, bool]:
    """The pre-session value to bind a form to, and whether it is new (set the cookie)."""
    existing = pre_binding(request)
    return (existing, False) if existing else (secrets.token_urlsafe(24), True)


def set_pre_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(
        PRE_COOKIE,
        value,
        max_age=PRE_LIFETIME,
        path="/team/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
