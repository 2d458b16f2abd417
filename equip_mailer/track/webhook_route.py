"""``POST /webhooks/sendgrid``: SendGrid's Event Webhook, answered only once stored.

The status codes are deliberate: 400 malformed JSON, 403 bad/missing/stale signature or no
key configured, 413 body too large (all "don't retry": a retry would fail the same way),
500 when storing failed (SendGrid retries, and the dedupe key makes the retry harmless),
200 with counts. One event the store cannot take (nested too deeply, a lone surrogate) is
refused on its own: the post's other events are stored, then the answer is 400 naming it.
``webhook_verify`` decides the 4xx answers and ``webhook`` stores; this module only maps
one onto the other.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import webhook, webhook_verify
from .body import read_body
from .privacy import db_error
from .state import Service

log = logging.getLogger("equip_mailer.track")


async def sendgrid_webhook(request: Request) -> Response:
    svc = Service.of(request)
    if svc.public_key is None:
        # Never accept unsigned posts: anyone could then invent bounces and suppress staff.
        log.warning("refused a SendGrid webhook post: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return JSONResponse({"error": "webhook verification key is not configured"}, 403)
    try:
        body = await read_body(request, svc.max_body)
        webhook_verify.verify_signature(
            svc.public_key,
            body,
            request.headers.get(webhook_verify.SIGNATURE_HEADER),
            request.headers.get(webhook_verify.TIMESTAMP_HEADER),
            window=svc.replay_window,
        )
        batch = webhook_verify.parse_events(body)
    except webhook_verify.WebhookError as exc:
        # 4xx: SendGrid does not retry these, and a retry would fail the same way.
        log.warning("refused a SendGrid webhook post (%d): %s", exc.status, exc.message)
        return JSONResponse({"error": exc.message}, exc.status)

    items = batch.events
    if batch.refused:
        # 400 for the bad events (a retry would fail the same way), after storing the rest
        log.warning(
            "refused %d of %d events in a SendGrid webhook post: %s",
            len(batch.refused),
            len(batch.refused) + len(items),
            "; ".join(batch.refused[:5]),
        )

    def work() -> webhook.StoreResult:
        with svc.writing, svc.engine.begin() as conn:
            return webhook.store_events(conn, items, ip_key=svc.link_key)

    try:
        result = await run_in_threadpool(work)
    except Exception as exc:  # noqa: BLE001 - any storage failure must be a 500
        # 500: SendGrid retries later; the dedupe key makes the retry harmless.
        log.error(
            "could not store %d SendGrid events (%s); answered 500 so SendGrid retries",
            len(items),
            db_error(exc),
        )
        return JSONResponse({"error": "could not store the events; please retry"}, 500)
    log.info(
        "SendGrid webhook: %d events, %d stored, %d duplicates",
        result.received,
        result.stored,
        result.duplicates,
    )
    if batch.refused:
        error = f"{len(batch.refused)} event(s) refused; the others were stored"
        return JSONResponse({"error": error, "refused": batch.refused, **result.as_dict()}, 400)
    return JSONResponse(result.as_dict())


ROUTES: list[BaseRoute] = [Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"])]
