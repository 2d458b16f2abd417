"""What people type into the sign-up forms, checked field by field, and the CSRF token that
proves a form was sent from our own page.

Each check gives one plain sentence tied to its field (the page shows it beside the field
and in a summary at the top, linked to the field). Lengths are capped here and again in the
store. CSRF is the signed double-submit pattern: a random cookie, set when a page with a
form is shown, and a hidden field holding an HMAC of that cookie and the form's path under
the link key; a POST must carry both, matching. A page from another site can make a
browser post, but can neither read the cookie nor compute the field. Posts whose ``Origin``
names another host are refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from starlette.datastructures import FormData
from starlette.requests import Request

from .registration import MAX_ACCESS_NEEDS, MAX_NAME, MAX_PRACTICE, MAX_ROLE

CSRF_COOKIE = "equip_csrf"
MAX_FORM_BODY = 16 * 1024  # the largest honest form is under 2 KB
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Checked:
    """A form's cleaned values and its problems (field -> sentence), in page order."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _clean(value: str, *, multiline: bool = False) -> str:
    value = _CONTROL.sub("", value.replace("\r\n", "\n"))
    if not multiline:
        value = " ".join(value.split())
    return value.strip()


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def check_details(form: FormData, *, choose_session: bool, session_ids: set[int]) -> Checked:
    """The sign-up form: date (when there is a choice), name, practice, role, access needs."""
    out = Checked()
    if choose_session:
        raw = _text(form, "session")
        if not raw.isdigit() or int(raw) not in session_ids:
            out.errors["session"] = "Choose the date you would like to come"
        else:
            out.values["session"] = raw
    limits = (
        ("name", MAX_NAME, "your full name"),
        ("practice", MAX_PRACTICE, "your practice or organisation"),
        ("role", MAX_ROLE, "your role"),
        ("access_needs", MAX_ACCESS_NEEDS, "what we should know"),
    )
    for name, limit, what in limits:
        value = _clean(_text(form, name), multiline=name == "access_needs")
        out.values[name] = value
        if len(value) > limit:
            out.errors[name] = f"Shorten {what} to {limit} characters or fewer"
    if not out.values["name"] and "name" not in out.errors:
        out.errors["name"] = "Enter your full name"
    return out


def check_email(form: FormData) -> Checked:
    out = Checked()
    value = _clean(_text(form, "email"))[:320]
    out.values["email"] = value
    if not value:
        out.errors["email"] = "Enter your email address"
        return out
    try:
        out.values["email"] = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        out.errors["email"] = "Enter an email address like name@example.org"
    return out


def csrf_field(key: bytes, cookie: str, path: str) -> str:
    mac = hmac.new(key, f"csrf|{cookie}|{path}".encode(), hashlib.sha256).hexdigest()
    return mac[:32]


def csrf_cookie(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie, or a new one (and True: set it on the response)."""
    found = request.cookies.get(CSRF_COOKIE, "")
    if re.fullmatch(r"[A-Za-z0-9_-]{20,64}", found):
        return found, False
    return secrets.token_urlsafe(24), True


def same_origin(request: Request) -> bool:
    """False when the browser says the post came from another site. Our pages send no
    referrer, so a browser may say ``Origin: null`` for our own forms: that proves nothing
    either way, and the CSRF field decides."""
    if request.headers.get("sec-fetch-site", "same-origin") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def csrf_ok(key: bytes, request: Request, form: FormData) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = _text(form, "csrf")
    if not cookie or not sent or not same_origin(request):
        return False
    return hmac.compare_digest(sent, csrf_field(key, cookie, request.url.path))
