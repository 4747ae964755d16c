"""The served OpenAPI document (``GET /openapi.json``), made to describe the server.

FastAPI writes the document of its own routes (bodies, parameters, ``response_model``
answers, the ``bearer`` / ``api-key`` schemes of ``guard.signed_in``); ``describe`` then

- adds the data plane, which is served by plain Starlette routes (``api.routing``), with
  its Qdrant bodies and envelopes (``api.qdrant_schemas``) and both security schemes;
- marks every other operation explicitly public (``security: []``);
- derives the errors each operation can answer from the error tree (``bastion.errors``)
  and what the operation is: a credential → ``AuthenticationError`` (401, also a step-up
  challenge) and ``AuthorizationError`` (403); a body → ``PayloadTooLarge`` (413, the
  body limit) and a validation error (422, 400 on the data plane); parameters → 422.
  Errors only a route knows about it declares with ``responses=raises(…)``;
- gives each error the body ``api.problems`` renders: ``application/problem+json``
  (``Problem``) on the problem paths, Qdrant's ``{"status": {"error"}}`` elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from bastion.api.bodies import FORM
from bastion.api.problems import Problem, is_problem_path
from bastion.api.qdrant_schemas import NDJSON_BODY, OPERATIONS, SCHEMAS, Operation, envelope
from bastion.api.responses import OAuthError
from bastion.api.routing import TAG, RouteTable
from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    InvalidGrant,
    PayloadTooLarge,
    RateLimited,
    ValidationError,
)
from bastion.vectors import BadRequest

PROBLEM_JSON = "application/problem+json"
SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"api-key": []}]
_METHODS = ("get", "put", "post", "delete", "patch")
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
UNDESCRIBED = Operation({"description": "Not described yet (api/qdrant_schemas.py)."})


def raises(*errors: type[BastionError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the errors a route raises beyond those the document derives."""
    found: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        if error is InvalidGrant:  # RFC 6749 §5.2, not a problem
            found[error.status] = {"model": OAuthError, "description": error.title}
            continue
        titles = found.setdefault(error.status, {"description": ""})
        titles["description"] = "; ".join(filter(None, (titles["description"], error.title)))
    return found


def read_body(
    model: type[BaseModel], *, form: bool = False, required: bool = True
) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads its body itself (form or JSON)."""
    schema = model.model_json_schema()
    content = {"application/json": {"schema": schema}}
    if form:
        content[FORM] = {"schema": schema}
    return {"requestBody": {"required": required, "content": content}}


def install(app: FastAPI, table: RouteTable) -> None:
    """Serve ``describe``'s document at ``/openapi.json`` (built once, on first use)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe(generate(), table)
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def describe(document: dict[str, Any], table: RouteTable) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(SCHEMAS)
    for name, schema in _models(Problem).items():
        schemas[name] = schema
    _add_data_plane(document, table)
    for path, _method, operation in _operations(document):
        operation.setdefault("security", [])  # explicitly public
        _describe_errors(path, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _models(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema and those it refers to, as components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    found: dict[str, Any] = schema.pop("$defs", {})
    found[model.__name__] = schema
    return found


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _add_data_plane(document: dict[str, Any], table: RouteTable) -> None:
    paths = document.setdefault("paths", {})
    for item in sorted(table.documented, key=lambda documented: documented.path):
        path = _CONVERTOR.sub(r"{\1}", item.path)  # ``{field_name:anything}``: a plain name
        # A route not described yet is listed untyped (the document test names it).
        described = OPERATIONS.get((item.method, path), UNDESCRIBED)
        operation: dict[str, Any] = {
            "tags": [TAG],
            "summary": item.summary,
            "operationId": f"{item.method.lower()}_{path.strip('/').replace('/', '_')}",
            "security": SECURED,
        }
        names = re.findall(r"\{(\w+)\}", path)
        if names:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in names
            ]
        if described.body == NDJSON_BODY:  # a backup file (docs/backup.md)
            operation["requestBody"] = {
                "required": True,
                "content": {NDJSON_BODY: {"schema": {"type": "string"}}},
            }
        elif described.body is not None:
            schema = {"$ref": f"#/components/schemas/{described.body}"}
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        if described.result is None:
            ok = {"application/x-ndjson": {"schema": {"type": "string"}}}
            description = "NDJSON: one Record per line"
        else:
            ok = {"application/json": {"schema": envelope(described.result)}}
            description = 'Qdrant envelope {"result", "status": "ok", "time"}'
        operation["responses"] = {"200": {"description": description, "content": ok}}
        operation["responses"].update(
            {str(error.status): {"description": error.title} for error in described.raises}
        )
        paths.setdefault(path, {})[item.method.lower()] = operation


def _derived(path: str, operation: dict[str, Any]) -> list[type[BastionError]]:
    """The errors every operation of this kind can answer (see the module docstring)."""
    problems = is_problem_path(path)
    found: list[type[BastionError]] = []
    if operation["security"]:
        found += [AuthenticationError, AuthorizationError]
    if "requestBody" in operation:
        found.append(PayloadTooLarge)
        # FastAPI: 422 for a body that does not fit, 400 for one it cannot even decode;
        # the data plane: 400 for both (Qdrant's status).
        found += [ValidationError, BastionError] if problems else [BadRequest]
    if operation.get("parameters") and problems:
        found.append(ValidationError)
    return found


def _describe_errors(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for error in _derived(path, operation):
        responses.setdefault(str(error.status), {"description": error.title})
    if is_problem_path(path):
        body = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    else:
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/QdrantError"}}}
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if response.get("content") and schema.get("$ref") != _FASTAPI_422:
            continue  # an error with its own shape (RFC 6749's token errors, readiness)
        if schema.get("$ref") == _FASTAPI_422:
            response["description"] = ValidationError.title
        response["content"] = body
        if status == str(AuthenticationError.status):
            response["headers"] = {
                "WWW-Authenticate": {
                    "description": "Bearer; with an RFC 9470 challenge on a step-up.",
                    "schema": {"type": "string"},
                }
            }
        if status == str(RateLimited.status):
            response["headers"] = {
                "Retry-After": {"description": "Seconds.", "schema": {"type": "integer"}}
            }
