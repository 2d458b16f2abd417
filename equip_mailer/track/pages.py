"""The service's few HTML pages share one plain, accessible layout (readers arrive from an
email on a phone or in Outlook), the same no-store/no-referrer headers, and the same
friendly "not valid" page for every link we refuse, so a refusal never says why.
"""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

# The look every page of the service shares (sign-up pages add their form styles to it).
STYLE = """
 body { font-family: Arial, Helvetica, sans-serif; font-size: 1.125rem; line-height: 1.5;
        color: #1d1d1b; background: #fff; margin: 0; }
 main { max-width: 36rem; margin: 3rem auto; padding: 0 1.25rem; }
 h1 { font-size: 1.6rem; color: #005eb8; }
 button { font: inherit; font-weight: bold; color: #fff; background: #005eb8; border: 0;
          border-radius: 4px; padding: .75rem 1.5rem; cursor: pointer; }
 button:focus { outline: 3px solid #ffb81c; outline-offset: 2px; }
"""

_PAGE = """<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} - EQUIP</title>
<style>{style}</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""

NOT_FOUND_BODY = (
    "<p>Sorry, this link is not valid. It may have been copied only in part, "
    "or changed on the way.</p>"
    "<p>Please try the link in the email again, or reply to the email and "
    "we will help.</p>"
)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page with ``title`` (escaped here) and ``body`` (HTML: the caller escapes its parts)."""
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body, style=STYLE),
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def not_found() -> HTMLResponse:
    return page("Link not found", NOT_FOUND_BODY, 404)


def try_again_later() -> HTMLResponse:
    """503 for a link we could not look up: the database did not answer, nothing changed."""
    return page(
        "Please try again",
        "<p>Something went wrong on our side. Please try the link again in a minute.</p>",
        503,
    )
