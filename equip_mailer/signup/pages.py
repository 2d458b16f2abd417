"""The sign-up pages as HTML: Jinja2 templates beside this module, the tracking service's
look (``track.pages.STYLE``) plus form styles, and headers that keep them private.

Server-rendered, no JavaScript: forms work in any browser a reader has, with labels, hints
and errors tied to their fields. Every page is ``no-store`` (they show a person's details),
``no-referrer`` (their URLs hold tokens) and under a Content-Security-Policy that allows no
script at all.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.responses import HTMLResponse

from equip_mailer.config import mask_email
from equip_mailer.track.pages import STYLE

from .catalogue import SessionInfo
from .registration import Availability

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["masked"] = mask_email


def when(session: SessionInfo) -> str:
    """``Thursday 27 June 2019, 13:00 to 17:00`` (London time)."""
    start, end = session.starts_local, session.ends_local
    return f"{start:%A} {start.day} {start:%B %Y}, {start:%H:%M} to {end:%H:%M}"


def places_text(free: Availability | None, waiting_list: bool) -> str:
    if free is None or free.places is None:
        return "Places available"
    if not free.full:
        left = free.left
        return f"{left} place{'s' if left != 1 else ''} left"
    return "Full \u2014 join the waiting list" if waiting_list else "Full"


_env.globals.update(when=when, places_text=places_text, style=STYLE)


def render(template: str, status: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(
        _env.get_template(template).render(**context), status_code=status, headers=HEADERS
    )


def message(
    title: str, paragraphs: list[str], status: int = 200, link: tuple[str, str] | None = None
) -> HTMLResponse:
    """A page that only says something (closed, check your email, too many requests), with
    at most one way on: ``link`` is (text, href)."""
    return render("message.html.j2", status, title=title, paragraphs=paragraphs, link=link)
