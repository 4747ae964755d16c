"""One place that turns errors into responses.

``/auth``, ``/me``, ``/admin`` and ``/.well-known`` speak RFC 9457 problem+json;
every other path is the Qdrant-compatible data plane and gets Qdrant's envelope.
No library message, stack trace or secret ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from bastion.errors import BastionError, InvalidGrant, RateLimited, StepUpRequired

log = logging.getLogger("bastion.errors")

PROBLEM_PREFIXES = ("/auth", "/me", "/admin", "/.well-known", "/healthz", "/setup", "/console")

_STATUS_CODES = {
    400: "validation_error",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as ``render`` writes them (``application/problem+json``).

    ``errors`` lists the fields of a 422; ``field`` and ``reason`` name what was refused;
    ``acr_values`` and ``max_age`` come with an RFC 9470 step-up challenge."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://bastion.dev/problems/not_found"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable snake_case machine code.", examples=["not_found"])
    errors: list[FieldError] | None = None
    field: str | None = None
    reason: str | None = None
    acr_values: str | None = None
    max_age: int | None = None


def is_problem_path(path: str) -> bool:
    """Whether ``path`` is under one of ``PROBLEM_PREFIXES``, matched by whole segments:
    ``/me`` and ``/me/factors`` are, ``/metrics`` and ``/mex`` are not."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PROBLEM_PREFIXES)


def render(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    headers = dict(headers or {})
    if status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = "Bearer"
    headers["Cache-Control"] = "no-store"
    if is_problem_path(request.url.path):
        body: dict[str, Any] = {
            "type": f"https://bastion.dev/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
        if extra:
            body.update(extra)
        return Response(
            orjson.dumps(body), status, headers=headers, media_type="application/problem+json"
        )
    envelope = {"status": {"error": detail}, "time": 0.0}
    return Response(orjson.dumps(envelope), status, headers=headers, media_type="application/json")


async def _bastion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BastionError)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, StepUpRequired):
        headers["WWW-Authenticate"] = exc.www_authenticate()
        extra = {"acr_values": exc.acr, "max_age": exc.max_age}
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, InvalidGrant):  # RFC 6749 §5.2 shape for the token endpoint
        body = {"error": "invalid_grant", "error_description": exc.detail}
        return Response(
            orjson.dumps(body),
            400,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    if exc.status >= 500:
        log.error("server fault %s: %s", exc.code, exc.detail)
        return render(
            request,
            status=500,
            code="internal_error",
            title="Internal server error",
            detail="The server could not complete the request.",
        )
    public_fields = {k: v for k, v in exc.fields.items() if k in {"errors", "reason", "field"}}
    extra.update(public_fields)
    return render(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=headers,
        extra=extra,
    )


def _describe_validation(errors: list[Any]) -> list[dict[str, str]]:
    described = []
    for error in errors[:20]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        described.append({"field": location or "body", "message": str(error.get("msg", ""))})
    return described


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _describe_validation(list(exc.errors()))
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return render(
        request,
        status=422 if is_problem_path(request.url.path) else 400,
        code="validation_error",
        title="The request is not valid",
        detail=f"Invalid request: {summary}" if summary else "Invalid request body.",
        extra={"errors": errors},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    return render(
        request,
        status=exc.status_code,
        code=code,
        title=code.replace("_", " ").capitalize(),
        detail=detail,
        headers=headers,
    )


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection before its body arrived (a load generator
    stopping mid-request): nobody is left to answer, and nothing went wrong here."""
    log.debug("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return render(
        request,
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="The server could not complete the request.",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(BastionError, _bastion_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
