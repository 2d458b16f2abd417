"""The sign-up pages' routes, mounted on the tracking service (``track.app.ROUTES``):

- ``/s/<token>``, ``/i/<token>``: the sign-up form (``signup_form``);
- ``/join/<campaign>/<course>``: the open sign-up page (``open_signup``);
- ``/r/<token>``, ``/r/<token>/calendar.ics``: a registration (``my_place``).

What they share (state, CSRF, forms) is in ``web``. No address, name or token is logged:
registrations are logged by id.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from . import my_place, open_signup, signup_form
from .web import SignupState, install

ROUTES: list[BaseRoute] = [
    Route("/s/{token}", signup_form.signup_page, methods=["GET", "HEAD"]),
    Route("/s/{token}", signup_form.signup_post, methods=["POST"]),
    Route("/i/{token}", signup_form.invite_page, methods=["GET", "HEAD"]),
    Route("/i/{token}", signup_form.invite_post, methods=["POST"]),
    Route("/join/{campaign}/{course}", open_signup.join_page, methods=["GET", "HEAD"]),
    Route("/join/{campaign}/{course}", open_signup.join_post, methods=["POST"]),
    Route("/r/{token}", my_place.registration_page, methods=["GET", "HEAD"]),
    Route("/r/{token}", my_place.registration_post, methods=["POST"]),
    Route("/r/{token}/calendar.ics", my_place.registration_calendar, methods=["GET"]),
]

__all__ = ["ROUTES", "SignupState", "install"]
