"""The team's pages: reports, rosters and attendance in a browser, behind a sign-in link.

Mounted on the tracking service (``equip-mailer serve``) under /team/. In the order a
request meets them:

- ``state``: what the pages need from the settings (the team, the public URL, the key).
- ``guard``: every page needs a live session; every POST a CSRF token (``csrf``).
- ``signin_links``, ``signin_mail``, ``sessions``, ``rate_limits``, ``members``: signing in
  with a single-use link from one's mail; no password anywhere.
- ``audit``: who changed what and when, written with the change, shown on the pages.
- ``render``: Jinja2 over ``templates/`` (and the report's), with the security headers.
- ``views/``: one module per kind of page, each with its ``ROUTES``; ``routes`` gathers them
  for the tracking app.
"""
