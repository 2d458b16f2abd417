"""The activity page: the audit log, newest first, so the team can see who changed what."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.track.state import Service

from .. import audit
from ..guard import Member, members_only
from ..render import page

SHOWN = 200


@members_only
async def activity_page(request: Request, member: Member) -> Response:
    engine = Service.of(request).engine

    def read() -> list[audit.Entry]:
        with engine.connect() as conn:
            return audit.recent(conn, limit=SHOWN)

    entries = await run_in_threadpool(read)
    return page(
        request,
        "activity.html.j2",
        {"title": "Activity", "member": member, "entries": entries, "shown": SHOWN},
    )


ROUTES: list[BaseRoute] = [Route("/team/activity", activity_page, methods=["GET"])]
