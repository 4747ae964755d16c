"""Per request: a request id, the request counted for ``/metrics``, an access log line.

Pure ASGI middleware, on the data plane's short path as on every other route (the app's
user middleware wraps both, ``api.routing``). Its cost per request is measured by
``python -m bench.observe`` (docs/benchmarks.md): a header scan, a random id, a
context variable, a wrapped ``send``, and one ``Tally.observe_request``.

- **Request id**: the incoming ``X-Request-ID`` if it is a short safe token that does not
  look like a secret (a client pasting its API key there must not see it logged and
  audited), else a new random one; bound for the request (``bastion.requestid``: log
  lines and audit events carry it) and returned in the ``X-Request-ID`` header.
- **Metrics**: method (the standard ones, else ``other``), route *template* and status,
  and the time until the response was sent. The template comes from the route that
  served the request; a data-plane request served by the short path is matched against
  the data plane's templates; anything else is ``unmatched``. So no label ever holds a
  raw path: collection names are tenant data and unbounded.
- **Serving state**: the app's lifespan passes through here too; once its start-up has
  finished (the collections are loaded) ``app.state.serving`` is true, and false again
  when shutdown begins. ``GET /readyz`` reads it.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion import requestid
from bastion.api.dataplane import table
from bastion.audit import secret_looking_value
from bastion.config import Settings
from bastion.metrics import METHODS, TALLY, UNMATCHED, folder_of, publish_from_this_process

access_log = logging.getLogger("bastion.access")
_HEADER = requestid.HEADER.encode()
_PREFIX = "/collections"


class Observe:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.access_log = settings.access_log
        self.templates = frozenset(route.path for route in table.routes)
        if settings.resolved_workers > 1:  # counters are added up over the worker processes
            publish_from_this_process(folder_of(settings.data_dir))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        started = perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                request_id = requestid.parse(value)
                break
        if request_id is None or secret_looking_value(request_id):
            request_id = requestid.new()
        header = (_HEADER, request_id.encode())
        status = 500  # unless a response starts: the server error middleware answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        bound = requestid.bind(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = perf_counter() - started
            method = scope["method"]
            method = method if method in METHODS else "other"
            route = self._route(scope)
            TALLY.observe_request(method, route, status, seconds)
            if self.access_log:
                _log_access(method, route, status, seconds, scope)
            requestid.unbind(bound)

    def _route(self, scope: Scope) -> str:
        """The template of the route that served the request (bounded: from code)."""
        route = scope.get("route")
        if route is not None:
            return _template(route, scope)
        path: str = scope["path"]
        if not path.startswith(_PREFIX):
            return UNMATCHED
        parts = path.split("/")
        if len(parts) > 2:
            parts[2] = "{name}"
        template = "/".join(parts)
        return template if template in self.templates else UNMATCHED

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state

        async def watch_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                state.serving = False  # before shutdown: load balancers stop sending
            return message

        async def watch_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                state.serving = True
            await send(message)

        state.serving = False
        await self.app(scope, watch_receive, watch_send)


def _template(route: Any, scope: Scope) -> str:
    """The route's full template. FastAPI may hand over the route as its router declared
    it, without the prefix it was included with (``/roles/{name}`` for
    ``/admin/roles/{name}``): the prefix is then the literal start of the path before the
    route's own segments (path parameters are single segments here)."""
    own = str(getattr(route, "path", ""))
    if isinstance(route, Mount):
        return own + "/{path}"
    if not own.startswith("/") or any("/" in str(v) for v in scope["path_params"].values()):
        return own or UNMATCHED
    parts = scope["path"].split("/")
    prefix = "/".join(parts[: len(parts) - own.count("/")])
    return prefix + own


def _log_access(method: str, route: str, status: int, seconds: float, scope: Scope) -> None:
    client: Any = scope.get("client")
    fields = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client": client[0] if client else None,
    }
    access_log.info("%s %s %d %.1f ms", method, route, status, seconds * 1000, extra=fields)
