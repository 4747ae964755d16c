"""The console's own stylesheet and scripts (no CDN: the console works with no internet)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from starlette.responses import Response

from bastion.console.actions import router
from bastion.console.web import PREFIX, ConsoleError, see_other

ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "webauthn.js": "text/javascript; charset=utf-8",
}


@cache
def _asset(name: str) -> bytes:
    return (files("bastion.console") / "static" / name).read_bytes()


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    kind = ASSETS.get(name)
    if kind is None:
        raise ConsoleError(404, "No such file.")
    return Response(_asset(name), media_type=kind)


async def not_found(path: str) -> Response:
    if not path:  # /console/
        return see_other(PREFIX)
    raise ConsoleError(404, "There is no such page in the console.")


def add_fallback() -> None:
    """Every other path under /console: the console's own 404 page (registered last)."""
    router.add_api_route("/{path:path}", not_found, methods=["GET", "POST"])
