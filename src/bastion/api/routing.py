"""How data-plane requests reach their endpoints: one dictionary lookup, not a router.

The data plane is the hot path (a search's HTTP work is done by one event loop; every µs
it spends around the search is a µs of throughput lost, docs/benchmarks.md). Its routes
are therefore kept in a table keyed by (method, path shape), where a shape is the path
with the collection name replaced by ``{}``: ``POST /collections/{}/points/query``. A
request that matches exactly is dispatched by one dictionary lookup, and an exception
its endpoint raises is rendered by the same handler the app registered for it (the
lookup Starlette's ``ExceptionMiddleware`` does). Anything else under ``/collections``
(an unknown path, another method, ``HEAD``, a trailing slash) goes to a Starlette
``Router`` over the same routes, so 404, 405 and trailing slashes behave as everywhere
else.

Both paths run inside the app's own user middleware (the body limit) and its
``ServerErrorMiddleware``, in the order Starlette builds them. ``api.openapi`` lists the
routes in ``/openapi.json`` (``documented``), with their Qdrant bodies and answers.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.api import unserved


class _Anything(Convertor[str]):
    """``{x:anything}``: the rest of the path, newlines included (Starlette's ``path``
    stops at a newline), so that a payload index stored under any name can be named."""

    regex = "(?s:.+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anything", _Anything())
_TAIL = re.compile(r"\{\w+:anything\}")

Endpoint = Callable[..., Awaitable[Response]]
Handler = Callable[[Request, Exception], Any]
PREFIX = "/collections"
TAG = "data plane (Qdrant subset)"


@dataclass(frozen=True)
class _Documented:
    method: str
    path: str
    summary: str


class RouteTable:
    """The data plane's routes: ``endpoint(request)`` or ``endpoint(request, name)``."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[str, tuple[str, ...]], Endpoint] = {}
        self.routes: list[Route] = []  # the same routes for the Starlette fallback
        self.documented: list[_Documented] = []
        self.resolver: Callable[[Request, str], Awaitable[str]] | None = None

    def _aliased(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint(request, name)`` with ``name`` resolved by ``resolver`` first (a
        collection alias → its collection), so the route authorises and acts on it."""

        async def resolved(request: Request, name: str, **rest: str) -> Response:
            if self.resolver is not None:
                name = await self.resolver(request, name)
            return await endpoint(request, name, **rest)

        resolved.__name__ = endpoint.__name__
        return resolved

    def route(
        self, method: str, path: str, summary: str, *, aliased: bool = True
    ) -> Callable[[Endpoint], Endpoint]:
        """Register ``endpoint`` for ``method path``; ``aliased``: its collection name may
        be an alias (``resolver`` turns it into the collection's name)."""
        parts = path[1:].split("/")
        params = [i for i, part in enumerate(parts) if "{" in part]
        named = params[:1] == [1] and parts[1] == "{name}"
        # One more parameter may end the path when it takes the rest of it, as
        # ``/index/{field_name:anything}``: such (rare) calls are served by the Starlette
        # router alone, not the one-lookup table.
        tail = params[1:] == [len(parts) - 1] and _TAIL.fullmatch(parts[-1]) is not None
        allowed = params == [] or (named and (len(params) == 1 or tail))
        if parts[0] not in ("collections", "aliases") or not allowed:
            raise ValueError(f"a data-plane path is /collections[/{{name}}/…]: {path}")
        shape = tuple("{}" if i in params else part for i, part in enumerate(parts))
        table = not tail

        def register(endpoint: Endpoint) -> Endpoint:
            if named and aliased:
                endpoint = self._aliased(endpoint)
            if table:
                self._endpoints[(method, shape)] = endpoint

            async def handle(request: Request) -> Response:
                return await endpoint(request, **request.path_params)

            self.routes.append(Route(path, handle, methods=[method], name=endpoint.__name__))
            self.documented.append(_Documented(method, path, summary))
            return endpoint

        return register

    def match(self, method: str, path: str) -> tuple[Endpoint, str | None] | None:
        """The endpoint for exactly this method and path, and the collection name in it."""
        parts = path[1:].split("/")
        if len(parts) == 1:
            endpoint = self._endpoints.get((method, (parts[0],)))
            return None if endpoint is None else (endpoint, None)
        name = parts[1]
        if not name or parts[0] != "collections":
            return None
        fixed = self._endpoints.get((method, tuple(parts)))  # /collections/aliases
        if fixed is not None:
            return fixed, None
        parts[1] = "{}"
        endpoint = self._endpoints.get((method, tuple(parts)))
        return None if endpoint is None else (endpoint, name)

    def served_first(self, app: FastAPI, everything_else: ASGIApp) -> ASGIApp:
        """``app``'s middleware stack with the short way in for ``/collections…``."""
        error_handler = None
        handlers: dict[Any, Handler] = {}
        for key, value in app.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        router = Router(
            routes=self.routes,
            redirect_slashes=app.router.redirect_slashes,
            default=unserved.not_found,  # Qdrant's envelope, naming the feature or the path
        )
        fallback = ExceptionMiddleware(router, handlers=handlers, debug=app.debug)
        inner: ASGIApp = _Dispatch(self, handlers, fallback)
        for cls, args, kwargs in reversed(app.user_middleware):
            inner = cls(inner, *args, **kwargs)
        data_plane = ServerErrorMiddleware(inner, handler=error_handler, debug=app.debug)
        return _ByPath(data_plane, everything_else)


class _ByPath:
    def __init__(self, data_plane: ASGIApp, everything_else: ASGIApp) -> None:
        self.data_plane = data_plane
        self.everything_else = everything_else

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith((PREFIX, *unserved.ELSEWHERE)):
            await self.data_plane(scope, receive, send)
        else:
            await self.everything_else(scope, receive, send)


class _Dispatch:
    """Exact matches straight to their endpoint; the rest to ``fallback``."""

    def __init__(
        self, table: RouteTable, handlers: Mapping[Any, Handler], fallback: ASGIApp
    ) -> None:
        self.table = table
        self.fallback = fallback
        self.by_status = {key: value for key, value in handlers.items() if isinstance(key, int)}
        self.by_class = {key: value for key, value in handlers.items() if isinstance(key, type)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.table.match(scope["method"], scope["path"])
        if found is None:
            feature = unserved.feature_of(scope["method"], scope["path"], named_method=True)
            if feature is not None:
                response = unserved.not_implemented(scope["method"], scope["path"], feature)
                await response(scope, receive, send)
                return
            await self.fallback(scope, receive, send)
            return
        endpoint, name = found
        scope["path_params"] = {} if name is None else {"name": name}
        request = Request(scope, receive, send)
        try:
            response = await (endpoint(request) if name is None else endpoint(request, name))
        except Exception as exc:
            handler = self.handler_for(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def handler_for(self, exc: Exception) -> Handler | None:
        """The handler Starlette's ``ExceptionMiddleware`` would pick for ``exc``."""
        if isinstance(exc, HTTPException) and exc.status_code in self.by_status:
            return self.by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.by_class:
                return self.by_class[cls]
        return None
