"""``GET /healthz``: whether the service can reach its store, for a load balancer or monitor.

200 JSON with the schema version and whether the webhook can verify posts; 503 when the
database does not answer.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from equip_mailer.store import meta

from .privacy import db_error
from .state import Service

log = logging.getLogger("equip_mailer.track")


async def healthz(request: Request) -> Response:
    svc = Service.of(request)

    def work() -> str | None:
        with svc.engine.connect() as conn:
            return conn.execute(
                sa.select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()

    try:
        version = await run_in_threadpool(work)
    except Exception as exc:  # noqa: BLE001
        log.error("health check: database error (%s)", db_error(exc))
        return JSONResponse({"status": "error", "db": "error"}, 503)
    return JSONResponse(
        {
            "status": "ok",
            "db": "ok",
            "schema_version": int(version or 0),
            "webhook": "ready" if svc.public_key is not None else "no key",
        }
    )


ROUTES: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
