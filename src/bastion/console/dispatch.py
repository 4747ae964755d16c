"""The console's calls to Bastion's own HTTP API, in process, through the whole ASGI app.

Every console action is an API request: the same routes, ``authz.decide``, step-up rules,
limits and audit as for any client. The request carries the browser's address (the
console request's client), its user agent, and ``CHANNEL_KEY`` in its scope (which no
client can set). Nothing leaves the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import orjson
from starlette.requests import Request
from starlette.types import Message

from bastion.console.channel import CHANNEL_KEY, CONSOLE

MAX_RESPONSE = 64 * 1024 * 1024


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names, first value of each
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


async def call_api(
    request: Request,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: Mapping[str, str | int] | None = None,
) -> ApiResponse:
    """``method path`` on this app, as the browser behind ``request`` (``path`` is
    percent-encoded, without a query). ``body`` is sent as JSON."""
    if not path.startswith("/") or path.startswith("/console") or "?" in path:
        raise ValueError(f"not an API path: {path!r}")
    content = b"" if body is None else orjson.dumps(body)
    host = urlsplit(str(request.app.state.settings.resolved_public_url)).netloc
    headers = [(b"host", host.encode("latin-1")), (b"content-length", str(len(content)).encode())]
    if content:
        headers.append((b"content-type", b"application/json"))
    if token:
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
    agent = request.headers.get("user-agent")
    if agent:
        headers.append((b"user-agent", agent.encode("latin-1", "replace")[:512]))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": request.scope.get("scheme", "http"),
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": urlencode(query or {}).encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        "state": dict(request.scope.get("state") or {}),
        CHANNEL_KEY: CONSOLE,
    }
    sent = False
    finished = asyncio.Event()  # a disconnect before the end would cut a streamed response
    status = 500
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []
    size = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", ()):
                response_headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_RESPONSE:
                raise ValueError("API response too large for the console")
            chunks.append(chunk)
            if not message.get("more_body", False):
                finished.set()

    try:
        await request.app(scope, receive, send)
    finally:
        finished.set()
    return ApiResponse(status, response_headers, b"".join(chunks))
