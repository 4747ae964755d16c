"""The risk engine's recent medium and high decisions (``GET /admin/risk/events``), with
their reasons, for admins: sign-ins it asked more of or refused, sessions it challenged or
ended (docs/risk.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bastion.console.actions import router
from bastion.console.pages.audit import actor_names
from bastion.console.session import Console, Refused

PAGE = 50


@router.get("/admin/risk")
async def risk_page(request: Request) -> Response:
    console = await Console.load(request)
    after = request.query_params.get("after", "").strip()[:64]
    query: dict[str, str | int] = {"limit": PAGE}
    if after.startswith("rsk_"):
        query["after"] = after
    error = None
    try:
        found = await console.api("GET", "/admin/risk/events", query=query)
    except Refused as refused:
        found, error = {"events": [], "next": None}, refused.message
    names = await actor_names(console) if error is None else {}
    return await console.page(
        "risk.html", events=found["events"], names=names, next_after=found["next"], error=error
    )
