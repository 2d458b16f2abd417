"""Every team page's route, for the tracking app to mount (``track.app.ROUTES``)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from .views import activity, campaigns, reports, roster_changes, rosters, signin

ROUTES: tuple[BaseRoute, ...] = (
    *signin.ROUTES,
    *campaigns.ROUTES,
    *reports.ROUTES,
    *rosters.ROUTES,
    *roster_changes.ROUTES,
    *activity.ROUTES,
)
