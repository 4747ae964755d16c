"""Security headers on every response, and no redirect built from the ``Host`` header.

One rule for every response, so that no route that carries a secret can be forgotten:

- ``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 9111 §5.2.2.5; ``Pragma`` for
  HTTP/1.0 caches): responses carry access and refresh tokens, TOTP secrets, recovery
  codes, new API keys, setup and enrolment links, exported data and the company data a
  search returns; no browser or proxy cache may keep any of them (OWASP REST Security
  Cheat Sheet, "Security headers").
- ``X-Content-Type-Options: nosniff``: a browser renders a response only as the type it
  declares.
- ``Strict-Transport-Security`` on responses to requests that came over TLS, directly or
  through a trusted proxy's ``X-Forwarded-Proto`` (RFC 6797 §7.2: never over plain HTTP).

A route's own value for one of these headers is replaced, not repeated.

Starlette answers a path that differs from a route by a trailing slash with a redirect
whose ``Location`` is built from the request's ``Host`` header (``Host: evil.example`` →
``Location: http://evil.example/…``). Bastion answers such a path ``404`` instead: no
client of the API relies on the redirect (qdrant-client sends the exact paths).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "install"]

_EVERY_RESPONSE = [
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
]
_OVER_TLS = [*_EVERY_RESPONSE, (b"strict-transport-security", b"max-age=31536000")]
_REPLACED = frozenset(name for name, _ in _OVER_TLS)


class SecurityHeaders:
    """Pure ASGI: adds the headers to the response start, nothing else per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _OVER_TLS if scope.get("scheme") == "https" else _EVERY_RESPONSE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = [item for item in message.get("headers", ()) if item[0] not in _REPLACED]
                message["headers"] = own + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """The headers on every response; a trailing-slash mismatch is a 404, not a redirect."""
    app.router.redirect_slashes = False
    app.add_middleware(SecurityHeaders)
