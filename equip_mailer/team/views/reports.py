"""A campaign's live report: the same cards, tables and charts as ``report.html``, made by
the report package from the same counted ``Report``, inside the team pages' frame; and the
same report.xlsx and CSVs to download.

``?all=1`` counts machine clicks in the headline figures, like ``equip-mailer report --all``.
The report comes from the cache (``report_cache``): counted once per change of the store,
and while a newer count runs the page shows the last one and says so.
"""

from __future__ import annotations

import re

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.track.state import Service

from .. import audit
from ..guard import Member, members_only
from ..render import page, secure_headers
from ..report_cache import Counted, Lookup, cache_of
from .campaigns import campaign_row

CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TABLE_KEY = re.compile(r"^[a-z0-9_]{1,40}$")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def not_found(request: Request, member: Member) -> Response:
    return page(
        request,
        "problem.html.j2",
        {
            "title": "No such campaign",
            "message": "There is no campaign with that id in the store. The campaigns page "
            "lists every campaign sent so far.",
            "back": "/team/",
            "member": member,
        },
        404,
    )


def _human_only(request: Request) -> bool:
    return request.query_params.get("all") != "1"


async def _lookup(request: Request, campaign_id: str) -> Lookup | None:
    """The report to show now: the last count, or the new one if it takes under 50 ms."""
    if not CAMPAIGN_ID.match(campaign_id):
        return None
    cache = cache_of(request.app.state)
    return await run_in_threadpool(cache.lookup, campaign_id, _human_only(request), 0.05, 20)


@members_only
async def report_page(request: Request, member: Member) -> Response:
    campaign_id = request.path_params["campaign_id"]
    found = await _lookup(request, campaign_id)
    if found is None:
        return not_found(request, member)
    engine = Service.of(request).engine

    def extras() -> tuple:
        with engine.connect() as conn:
            return campaign_row(conn, campaign_id), audit.recent(conn, campaign_id, limit=20)

    row, entries = await run_in_threadpool(extras)
    context = {
        "title": f"Report: {campaign_id}",
        "member": member,
        "campaign_id": campaign_id,
        "subject": row.subject if row else None,
        "human_only": _human_only(request),
        "lookup": found,
        "entries": entries,
        "tab": "report",
    }
    if found.counted is None:  # the first count is still running: look again shortly
        return page(request, "report_counting.html.j2", context)
    counted: Counted = found.counted
    context |= {
        "report": counted.report,
        "counted": counted,
        "context": counted.context,
        "sections_html": Markup(counted.sections_html),  # rendered by our autoescaping env
        "tables": list(counted.report.tables.values()),
    }
    return page(request, "campaign_report.html.j2", context)


def _download(content: bytes, filename: str, media_type: str) -> Response:
    response = Response(content, media_type=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return secure_headers(response)


async def _fresh(request: Request, member: Member) -> Counted | Response:
    """The report as the page shows it now, for a download: a file waits for the count in
    progress (up to a minute) rather than be older than the page it was asked from."""
    campaign_id = request.path_params["campaign_id"]
    if not CAMPAIGN_ID.match(campaign_id):
        return not_found(request, member)
    cache = cache_of(request.app.state)
    found = await run_in_threadpool(cache.lookup, campaign_id, _human_only(request), 60, 60)
    if found is None or found.counted is None:
        return not_found(request, member)
    return found.counted


def _suffix(request: Request) -> str:
    return "" if _human_only(request) else "-all-clicks"


@members_only
async def report_xlsx(request: Request, member: Member) -> Response:
    counted = await _fresh(request, member)
    if isinstance(counted, Response):
        return counted
    content = await run_in_threadpool(counted.xlsx)
    name = f"{counted.report.campaign_id}-report{_suffix(request)}.xlsx"
    return _download(content, name, XLSX)


@members_only
async def report_csv(request: Request, member: Member) -> Response:
    key = request.path_params["table"]
    counted = await _fresh(request, member)
    if isinstance(counted, Response):
        return counted
    content = await run_in_threadpool(counted.csv, key) if TABLE_KEY.match(key) else None
    if content is None:
        return not_found(request, member)
    name = f"{counted.report.campaign_id}-{key}{_suffix(request)}.csv"
    return _download(content, name, "text/csv; charset=utf-8")


ROUTES: list[BaseRoute] = [
    Route("/team/campaigns/{campaign_id}", report_page, methods=["GET"]),
    Route("/team/campaigns/{campaign_id}/report.xlsx", report_xlsx, methods=["GET"]),
    Route("/team/campaigns/{campaign_id}/csv/{table}.csv", report_csv, methods=["GET"]),
]
