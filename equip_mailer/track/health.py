"""``GET /healthz``: whether the service can reach its store, and, to whoever holds the link
secret, whether it is the service that mail about to be sent will link to.

The public answer is only ``{"status": "ok", "db": "ok"}`` (503 when the database does not
answer): nothing about keys, versions or campaigns. With ``?challenge=NONCE&campaign=ID``
it adds ``proof``: HMACs of the nonce under a key derived from the service's link secret,
one alone (same secret?), one with the campaign's links digest in this store (same links?),
one with the webhook's readiness, one with the form of link it answers (a version that
reads the links the sender is about to mail?). The sender computes the same values under
its own secret and compares (``send/service_check.py``); anyone else learns nothing, and no
answer can stand in for a token signature.
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from equip_mailer import link_secret
from equip_mailer.store import identity, meta

from .privacy import db_error
from .state import Service

log = logging.getLogger("equip_mailer.track")

NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
CAMPAIGN = re.compile(r"[A-Za-z0-9_.-]{1,100}")
NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    svc = Service.of(request)
    nonce = request.query_params.get("challenge")
    campaign_id = request.query_params.get("campaign", "")
    challenged = nonce is not None
    if challenged and not (NONCE.fullmatch(nonce or "") and CAMPAIGN.fullmatch(campaign_id)):
        return JSONResponse({"status": "error", "error": "bad challenge"}, 400, NO_STORE)

    def work() -> str:
        with svc.engine.connect() as conn:
            conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
            return identity.links_digest(conn, campaign_id) if challenged else ""

    try:
        digest = await run_in_threadpool(work)
    except Exception as exc:  # noqa: BLE001
        log.error("health check: database error (%s)", db_error(exc))
        return JSONResponse({"status": "error", "db": "error"}, 503, NO_STORE)
    body: dict = {"status": "ok", "db": "ok"}
    if nonce is not None:
        body["proof"] = link_secret.healthz_proofs(
            svc.link_key, nonce, campaign_id, digest, svc.public_key is not None
        )
    return JSONResponse(body, headers=NO_STORE)


ROUTES: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
