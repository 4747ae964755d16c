"""Body size cap as pure ASGI middleware: refuses big bodies before they are read."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.problems import is_problem_path


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """``exempt``: the paths whose route applies its own limit once it has authorised the
    caller (a restore's body is a whole collection)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, exempt: re.Pattern[str] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.exempt is not None and self.exempt.fullmatch(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(scope, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"The request body exceeds the limit of {self.max_bytes} bytes."
        body: dict[str, Any]
        if is_problem_path(scope.get("path", "")):
            body = {
                "type": "https://bastion.dev/problems/payload_too_large",
                "title": "The request body is too large",
                "status": 413,
                "detail": detail,
                "code": "payload_too_large",
            }
            media = b"application/problem+json"
        else:
            body = {"status": {"error": detail}, "time": 0.0}
            media = b"application/json"
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
