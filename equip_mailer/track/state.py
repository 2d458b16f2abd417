"""What every route of the tracking service shares, built once per app by ``app.create_app``.

Routes are plain module-level functions, not closures: each finds the engine, the keys and
the click machinery with ``Service.of(request)``. A route from another package (sign-up
pages, team pages) mounts on the same app and reaches the same store the same way.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sqlalchemy.engine import Engine
from starlette.requests import HTTPConnection

from equip_mailer.send.notice_worker import NoticeWorker

from .click_writer import ClickWriter
from .lookups import Lookups


@dataclass(frozen=True)
class Service:
    engine: Engine
    link_key: bytes  # signs /c/ and /u/ tokens; also keys the IP hash
    public_key: EllipticCurvePublicKey | None  # SendGrid's; None: the webhook refuses all
    replay_window: float
    max_body: int
    # SQLite has one writer: a lock that queues this process's write transactions (a
    # no-op context on PostgreSQL). Every route that writes takes it.
    writing: AbstractContextManager[Any]
    lookups: Lookups
    clicks: ClickWriter
    # Sends confirmations and sign-in links enqueued by pages: ``wake()`` after a commit.
    notices: NoticeWorker

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @staticmethod
    def of(request: HTTPConnection) -> Service:
        """The app's Service (``app.state.service``)."""
        service: Service = request.app.state.service
        return service
