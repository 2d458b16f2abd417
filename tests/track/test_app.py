"""The assembled app: unknown paths get the friendly 404 page, and another package's routes
mount beside the tracking ones and reach the same store (``equip-mailer serve``, which runs
it under uvicorn, is tested in tests/cli/test_serve.py).
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.service import running_app

from equip_mailer.track.app import create_app
from equip_mailer.track.state import Service


def test_unknown_paths_get_the_not_found_page(service):
    _, client = service
    missing = client.get("/nothing-here")
    assert missing.status_code == 404 and "this link is not valid" in missing.text


def test_another_packages_routes_mount_beside_the_service(settings, engine, campaign):
    """How a later package (sign-up pages, team pages) adds its pages: module-level handlers
    that find the store with ``Service.of(request)``, passed in as routes."""

    async def campaigns(request: Request) -> JSONResponse:
        with Service.of(request).engine.connect() as conn:
            ids = [r.id for r in conn.exec_driver_sql("SELECT id FROM campaigns")]
        return JSONResponse({"campaigns": ids})

    app = create_app(settings, engine, extra_routes=[Route("/team/campaigns", campaigns)])
    with running_app(app) as base:
        assert httpx.get(base + "/team/campaigns").json() == {"campaigns": [campaign.id]}
        assert httpx.get(base + "/healthz").json()["db"] == "ok"  # the service's own, still
