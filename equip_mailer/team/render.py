"""Team pages as HTML: one Jinja2 environment over the team's templates and the report's
(so a campaign page includes the report's own sections), and the headers every team page
carries.

The headers say: never cache (pages hold the team's data), never send a Referer (a
sign-in link must not leak into another site's logs), never frame (clickjacking), and run
no script at all (the pages need none: ``default-src 'none'`` with inline styles only).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("equip_mailer.team", "templates"),
                PackageLoader("equip_mailer.report", "templates"),
            ]
        ),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def secure_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """Render ``template`` with ``context`` (plus the request's path) as a team page."""
    html = environment().get_template(template).render(path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status)
    secure_headers(response)
    return response


def see_other(location: str) -> Response:
    """303 after a POST (or to the sign-in page): the browser GETs ``location``."""
    return secure_headers(RedirectResponse(location, status_code=303))
