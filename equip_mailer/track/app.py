"""The tracking service as one Starlette app: ``equip-mailer serve`` runs it under uvicorn.

``create_app`` builds the shared state (``state.Service``: engine, keys, click cache and
writer), then serves the routes each concern module lists in its ``ROUTES``: ``clicks``
(/c/), ``unsubscribe`` (/u/), ``webhook_route`` (/webhooks/sendgrid), ``health``
(/healthz), the sign-up pages (``equip_mailer.signup.routes``: /s/, /i/, /join/, /r/) and the
team's pages (``equip_mailer.team.routes``: /team/). Another package's pages join by adding
their ``ROUTES`` to ``ROUTES`` below (or ``extra_routes`` for one app); their handlers reach
the store through ``Service.of(request)`` and the settings through ``app.state.settings``.

Clicks are answered first and written just after (``click_writer``); unsubscribes and
SendGrid webhook posts are synchronous, their answer means "stored". Other database work
runs in the threadpool so one slow transaction never stalls the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from equip_mailer.config import Settings
from equip_mailer.send.notice_transports import notice_transport
from equip_mailer.send.notice_worker import NoticeWorker
from equip_mailer.send.notices import NoticeSender
from equip_mailer.signup import routes as signup_routes
from equip_mailer.store import identity, open_store
from equip_mailer.team import routes as team
from equip_mailer.team.state import TeamState

from . import clicks, health, unsubscribe, webhook_route, webhook_verify
from .click_writer import ClickWriter
from .lookups import Lookups
from .pages import not_found, page
from .state import Service

log = logging.getLogger("equip_mailer.track")

ROUTES: tuple[BaseRoute, ...] = (
    *clicks.ROUTES,
    *signup_routes.ROUTES,
    *unsubscribe.ROUTES,
    *webhook_route.ROUTES,
    *health.ROUTES,
    *team.ROUTES,
)


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that hung up mid-body (a dropped phone connection, a timed-out proxy) is
    one log line, not a traceback: nothing was read, so nothing was done."""
    log.warning(
        "%s %s: the client disconnected before sending the whole body; nothing was done",
        request.method,
        request.url.path,
    )
    return Response(status_code=400)  # no one is there to read it


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths get the same friendly 404 page as a bad link; wrong methods a plain page."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500  # only HTTPException
    if status == 404:
        return not_found()
    return page("Not allowed", "<p>That request is not supported here.</p>", status)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """On start, send notices left pending; on shutdown (SIGTERM/SIGINT to uvicorn), write
    every accepted click and finish the notice in hand before exit."""
    svc: Service = app.state.service
    svc.notices.start()
    yield
    await run_in_threadpool(svc.clicks.close)
    await run_in_threadpool(app.state.signup.writer.close)
    await run_in_threadpool(svc.notices.close)
    reports = getattr(app.state, "team_reports", None)  # the team pages' counting process
    if reports is not None:
        await run_in_threadpool(reports.close)
    if app.state.owns_engine:
        svc.engine.dispose()


def worker_app() -> Starlette:
    """The app in each worker process of ``equip-mailer serve --workers N`` (uvicorn calls
    it as a factory): settings read again as the command read them (environment, the
    project's equip-mailer.toml, the user's config), so each worker has its own engine,
    click writer, sign-up writer and notice worker. PostgreSQL only: the command keeps
    SQLite, which wants one writer process, on one worker."""
    from equip_mailer.config import load_settings

    # A spawned worker does not inherit the command's logging set-up: the same lines here.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = load_settings()
    return create_app(cfg, notices_outbox=cfg.outbox)


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    replay_window: float = webhook_verify.REPLAY_WINDOW,
    max_body: int = webhook_verify.MAX_BODY,
    extra_routes: Sequence[BaseRoute] = (),
    notices_outbox: Path = Path("outbox"),
) -> Starlette:
    """The tracking service over ``engine`` (default: the store at ``settings.database_url``).

    A missing or weak link secret, one other than the store's mail was signed with, or a
    malformed webhook key fails here, at start-up, as a ConfigError; a *missing* webhook
    key only makes the webhook refuse every post. ``extra_routes`` are served after the
    service's own. Notices (confirmations, sign-in links) go through SendGrid when
    configured, else to ``notices_outbox``/notices/.
    """
    link_key = settings.require_link_secret()
    if settings.team:  # who sign-in mail comes from: a ConfigError now, not a lost mail later
        TeamState.from_settings(settings)
    public_key = (
        webhook_verify.load_public_key(settings.sendgrid_webhook_public_key)
        if settings.sendgrid_webhook_public_key
        else None
    )
    owns_engine = engine is None
    engine = engine if engine is not None else open_store(settings.database_url)
    try:
        with engine.connect() as conn:  # another secret than the store's mail: links all 404
            identity.check(conn, link_key, settings.where("link_secret"))
    except Exception:
        if owns_engine:
            engine.dispose()
        raise
    # SQLite has one writer. Threads that meet inside it wait in its busy handler, which
    # sleeps in growing steps: with 4 concurrent clicks the p99 went from ~7 ms to 30-900 ms.
    # Queue this process's write transactions on a lock instead (PostgreSQL needs none).
    writing: contextlib.AbstractContextManager[Any] = (
        threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    )
    svc = Service(
        engine=engine,
        link_key=link_key,
        public_key=public_key,
        replay_window=replay_window,
        max_body=max_body,
        writing=writing,
        lookups=Lookups(),
        clicks=ClickWriter(engine, writing),
        notices=NoticeWorker(NoticeSender(engine, notice_transport(settings, notices_outbox))),
    )
    if public_key is None:
        log.warning(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /webhooks/sendgrid will refuse every "
            "post (403). Set it to the verification key from SendGrid's Event Webhook settings."
        )
    app = Starlette(
        routes=[*ROUTES, *extra_routes],
        exception_handlers={HTTPException: http_error, ClientDisconnect: client_gone},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # no redirects we did not decide on
    app.state.service = svc
    app.state.settings = settings  # pages that need more than Service (team pages)
    app.state.owns_engine = owns_engine
    app.state.clicks = svc.clicks  # app.state.clicks.flush(): wait until queued clicks are stored
    app.state.lookups = svc.lookups
    signup_routes.install(app, settings.public_url, engine, writing)
    return app
